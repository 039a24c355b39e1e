// The ADD result (SPEC.md §5): one typed current (1.1.0) shape, parsed from any supported
// version and written in the version the runtime asked for, as libcni's types/100 and
// types/040 convert. 1.0.0 and 1.1.0 share one shape; 0.3.0, 0.3.1 and 0.4.0 add
// `ips[].version` ("4" or "6") and lack the interface fields `mtu`, `socketPath`, `pciID`.
import { isIP } from 'node:net';
import { CniError, ErrorCode } from './errors.js';
import { hasIpVersionField, SUPPORTED_VERSIONS } from './version.js';

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  /** The netns path for an interface in the container; absent for host interfaces. */
  readonly sandbox?: string;
  readonly socketPath?: string;
  readonly pciID?: string;
}

export interface IpConfig {
  /** CIDR notation: 10.65.1.7/32. */
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

export interface Route {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface Dns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface CniResult {
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly IpConfig[];
  readonly routes: readonly Route[];
  readonly dns: Dns;
}

export const emptyResult = (): CniResult => ({ interfaces: [], ips: [], routes: [], dns: {} });

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** 4 or 6 for `addr/len` with a valid prefix length; undefined otherwise. */
export function cidrFamily(text: string): 4 | 6 | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const f = isIP(text.slice(0, slash));
  const len = text.slice(slash + 1);
  if (f === 0 || !/^\d{1,3}$/.test(len) || Number(len) > (f === 4 ? 32 : 128)) return undefined;
  return f === 4 ? 4 : 6;
}

export const ipOf = (cidr: string): string => cidr.slice(0, cidr.lastIndexOf('/'));

const join = (path: string, k: string): string => (path === '' ? k : `${path}.${k}`);

class Reader {
  constructor(private readonly where: string) {}

  fail(path: string, why: string): never {
    throw new CniError(ErrorCode.InvalidConfig, `invalid ${this.where}${path}`, why);
  }

  str(o: JsonObject, k: string, path: string): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(join(path, k), `must be a string, not ${JSON.stringify(v)}`);
    return v;
  }

  uint(o: JsonObject, k: string, path: string): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      this.fail(join(path, k), `must be a whole number, not ${JSON.stringify(v)}`);
    return v;
  }

  strings(o: JsonObject, k: string, path: string): string[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      this.fail(join(path, k), `must be a list of strings, not ${JSON.stringify(v)}`);
    return v as string[];
  }

  list(o: JsonObject, k: string, path: string): JsonObject[] {
    const v = o[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => !isObject(x)))
      this.fail(join(path, k), `must be a list of objects`);
    return v as JsonObject[];
  }
}

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } =>
  (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };

export function parseDns(v: Json | undefined, r: Reader, path: string): Dns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) r.fail(path, 'must be an object');
  return {
    ...opt('nameservers', r.strings(v, 'nameservers', path)),
    ...opt('domain', r.str(v, 'domain', path)),
    ...opt('search', r.strings(v, 'search', path)),
    ...opt('options', r.strings(v, 'options', path)),
  };
}

/**
 * A result (prevResult, or a delegated IPAM plugin's output) in any supported version, as
 * the current shape. `where` names it in errors (`prevResult`, `ipam result`).
 */
export function parseResult(v: unknown, version: string, where: string): CniResult {
  const r: Reader = new Reader(where);
  if (!isObject(v)) r.fail('', 'must be an object');
  const own = v['cniVersion'];
  const ver = typeof own === 'string' && own !== '' ? own : version;
  if (!SUPPORTED_VERSIONS.includes(ver))
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `${where} has unsupported cniVersion ${JSON.stringify(ver)}`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  const legacy = hasIpVersionField(ver);
  const interfaces = r.list(v, 'interfaces', '.interfaces').map((o, i): CniInterface => {
    const p = `.interfaces[${i}]`;
    const name = r.str(o, 'name', p);
    if (name === undefined || name === '') r.fail(`${p}.name`, 'is required');
    return {
      name,
      ...opt('mac', r.str(o, 'mac', p)),
      ...opt('mtu', r.uint(o, 'mtu', p)),
      ...opt('sandbox', r.str(o, 'sandbox', p)),
      ...opt('socketPath', r.str(o, 'socketPath', p)),
      ...opt('pciID', r.str(o, 'pciID', p)),
    };
  });
  const ips = r.list(v, 'ips', '.ips').map((o, i): IpConfig => {
    const p = `.ips[${i}]`;
    const address = r.str(o, 'address', p);
    if (address === undefined) r.fail(`${p}.address`, 'is required');
    const fam = cidrFamily(address);
    if (fam === undefined)
      r.fail(`${p}.address`, `${JSON.stringify(address)} is not an address in CIDR notation`);
    const gateway = r.str(o, 'gateway', p);
    if (gateway !== undefined && isIP(gateway) !== fam)
      r.fail(`${p}.gateway`, `${JSON.stringify(gateway)} is not an IPv${fam} address`);
    const idx = r.uint(o, 'interface', p);
    if (idx !== undefined && idx >= interfaces.length)
      r.fail(`${p}.interface`, `index ${idx} is past the ${interfaces.length} interfaces`);
    if (legacy) {
      const ver = r.str(o, 'version', p);
      if (ver !== undefined && ver !== String(fam))
        r.fail(`${p}.version`, `is ${JSON.stringify(ver)} but the address is IPv${fam}`);
    }
    return { address, ...opt('gateway', gateway), ...opt('interface', idx) };
  });
  const routes = r.list(v, 'routes', '.routes').map((o, i): Route => {
    const p = `.routes[${i}]`;
    const dst = r.str(o, 'dst', p);
    if (dst === undefined || cidrFamily(dst) === undefined)
      r.fail(`${p}.dst`, `${JSON.stringify(dst ?? null)} is not a destination in CIDR notation`);
    const gw = r.str(o, 'gw', p);
    if (gw !== undefined && isIP(gw) === 0) r.fail(`${p}.gw`, `${JSON.stringify(gw)} is not an IP address`);
    return {
      dst,
      ...opt('gw', gw),
      ...opt('mtu', r.uint(o, 'mtu', p)),
      ...opt('advmss', r.uint(o, 'advmss', p)),
      ...opt('priority', r.uint(o, 'priority', p)),
      ...opt('table', r.uint(o, 'table', p)),
      ...opt('scope', r.uint(o, 'scope', p)),
    };
  });
  return { interfaces, ips, routes, dns: parseDns(v['dns'], r, '.dns') };
}

const dnsEmpty = (d: Dns): boolean =>
  d.nameservers === undefined && d.domain === undefined && d.search === undefined && d.options === undefined;

/**
 * The result as JSON in `version`. Empty lists and an empty dns are left out, as libcni's
 * `omitempty`. `ipam`: a delegated IPAM plugin's abbreviated result (no interfaces, no
 * `ips[].interface`).
 */
export function encodeResult(res: CniResult, version: string, ipam = false): JsonObject {
  const legacy = hasIpVersionField(version);
  const out: JsonObject = { cniVersion: version };
  if (!ipam && res.interfaces.length > 0)
    out['interfaces'] = res.interfaces.map((i) => {
      const o: JsonObject = { name: i.name };
      if (i.mac !== undefined) o['mac'] = i.mac;
      if (!legacy && i.mtu !== undefined) o['mtu'] = i.mtu;
      if (i.sandbox !== undefined) o['sandbox'] = i.sandbox;
      if (!legacy && i.socketPath !== undefined) o['socketPath'] = i.socketPath;
      if (!legacy && i.pciID !== undefined) o['pciID'] = i.pciID;
      return o;
    });
  if (res.ips.length > 0)
    out['ips'] = res.ips.map((ip) => {
      const o: JsonObject = {};
      if (legacy) o['version'] = cidrFamily(ip.address) === 6 ? '6' : '4';
      if (!ipam && ip.interface !== undefined) o['interface'] = ip.interface;
      o['address'] = ip.address;
      if (ip.gateway !== undefined) o['gateway'] = ip.gateway;
      return o;
    });
  if (res.routes.length > 0)
    out['routes'] = res.routes.map((r) => {
      const o: JsonObject = { dst: r.dst };
      for (const k of ['gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
        const x = r[k];
        if (x !== undefined) o[k] = x;
      }
      return o;
    });
  if (!dnsEmpty(res.dns)) {
    const d: JsonObject = {};
    if (res.dns.nameservers !== undefined) d['nameservers'] = [...res.dns.nameservers];
    if (res.dns.domain !== undefined) d['domain'] = res.dns.domain;
    if (res.dns.search !== undefined) d['search'] = [...res.dns.search];
    if (res.dns.options !== undefined) d['options'] = [...res.dns.options];
    out['dns'] = d;
  }
  return out;
}

/** `Reader` for config parsing elsewhere in spec/. */
export const readerFor = (where: string): Reader => new Reader(where);
export type { Reader };
