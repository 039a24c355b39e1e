// The request configuration on stdin (SPEC.md §1 and §3 "Deriving request configuration"):
// one plugin's object of a conflist as the runtime passes it, with Tabby's own fields.
// Validation errors name the field: 6 when stdin is not JSON, 1 for the version, 7 for a
// bad value, 2 for a field Tabby does not support.
import { isIP } from 'node:net';
import { isMtu, MAX_MTU, MIN_MTU } from '@tabby/ipip/mtu-file';
import { CniError, ErrorCode } from './errors.js';
import { isValidName } from './env.js';
import type { CniResult, Dns, Json, JsonObject } from './result.js';
import type { Reader } from './result.js';
import { isObject, parseDns, parseResult, readerFor } from './result.js';
import { requireSupported } from './version.js';

/** Mirrors @tabby/datastore's DatastoreConfig (kept structural so spec/ loads nothing heavy). */
export type DatastoreSettings =
  | { readonly type: 'yaml'; readonly dir: string }
  | {
      readonly type: 'etcdv3';
      readonly endpoints: readonly string[];
      readonly prefix?: string;
      readonly caFile?: string;
      readonly certFile?: string;
      readonly keyFile?: string;
      readonly username?: string;
      readonly password?: string;
    }
  | { readonly type: 'kubernetes'; readonly kubeconfig?: string };

export const TABBY_IPAM = 'tabby-ipam';

export interface TabbyIpamConf {
  readonly type: typeof TABBY_IPAM;
  readonly assignIpv4: boolean;
  readonly assignIpv6: boolean;
  readonly ipv4Pools: readonly string[];
  readonly ipv6Pools: readonly string[];
}

/** Any other IPAM type: run from CNI_PATH with the whole config (SPEC.md §4). */
export interface DelegatedIpamConf {
  readonly type: string;
  readonly delegated: true;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ValidAttachment {
  readonly containerID: string;
  readonly ifname: string;
}

/** Calico's `kubernetes` section: where the plugin reaches the Kubernetes API. */
export interface KubernetesSettings {
  /** A kubeconfig file (Calico's `kubernetes.kubeconfig`). */
  readonly kubeconfig?: string;
}

export interface NetConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  /** Pod veth MTU; undefined (or 0 in the config): the MTU file's, else 1500 (../commands/mtu.ts). */
  readonly mtu?: number;
  /** Calico's `require_mtu_file`: ADD fails (try again later) while the MTU file is missing. */
  readonly requireMtuFile: boolean;
  /** Where the pod's Namespace labels are read from, for IPPool namespaceSelector. */
  readonly kubernetes: KubernetesSettings;
  /** Undefined when the config has no `ipam` (only VERSION, STATUS and GC can do without). */
  readonly ipam?: TabbyIpamConf | DelegatedIpamConf;
  /** Undefined: from the environment (DATASTORE_TYPE ...) as the tabby CLI reads it. */
  readonly datastore?: DatastoreSettings;
  /**
   * The node daemon's socket, to which the datastore work is delegated when the daemon
   * answers (../node-api/client.ts). Undefined: the daemon's default socket; false (`none`):
   * never delegate.
   */
  readonly nodeSocket?: string | false;
  readonly logLevel: LogLevel;
  readonly nodename?: string;
  readonly dns: Dns;
  readonly prevResult?: CniResult;
  readonly runtimeConfig: JsonObject;
  /** GC only. */
  readonly validAttachments?: readonly ValidAttachment[];
  /** The object as received: what a delegated plugin gets on its stdin. */
  readonly raw: JsonObject;
}

const r: Reader = readerFor('network config: ');

function unsupported(field: string, value: Json | undefined, why: string): never {
  throw new CniError(
    ErrorCode.UnsupportedField,
    `unsupported field ${field}`,
    `${field}=${JSON.stringify(value ?? null)}: ${why}`,
  );
}

function onlyKeys(o: JsonObject, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) unsupported(`${path}.${k}`, o[k], `known fields are ${allowed.join(', ')}`);
}

/** Calico writes `"assign_ipv4": "true"`; a JSON boolean is accepted too. */
function flag(o: JsonObject, k: string, path: string, dflt: boolean): boolean {
  const v = o[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return r.fail(path === '' ? k : `${path}.${k}`, `must be true or false, not ${JSON.stringify(v)}`);
}

function parseIpam(v: Json | undefined): TabbyIpamConf | DelegatedIpamConf | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) r.fail('ipam', 'must be an object');
  const type = r.str(v, 'type', 'ipam');
  if (type === undefined || type === '') r.fail('ipam.type', 'is required');
  if (/[/\\]/.test(type) || type === '.' || type === '..')
    r.fail('ipam.type', `${JSON.stringify(type)} must be a file name in CNI_PATH`);
  if (type !== TABBY_IPAM) return { type, delegated: true };
  onlyKeys(v, ['type', 'assign_ipv4', 'assign_ipv6', 'ipv4_pools', 'ipv6_pools'], 'ipam');
  const ipam: TabbyIpamConf = {
    type: TABBY_IPAM,
    assignIpv4: flag(v, 'assign_ipv4', 'ipam', true),
    assignIpv6: flag(v, 'assign_ipv6', 'ipam', false),
    ipv4Pools: r.strings(v, 'ipv4_pools', 'ipam') ?? [],
    ipv6Pools: r.strings(v, 'ipv6_pools', 'ipam') ?? [],
  };
  if (!ipam.assignIpv4 && !ipam.assignIpv6)
    r.fail('ipam.assign_ipv4', 'assign_ipv4 and assign_ipv6 are both false: the pod would get no address');
  return ipam;
}

function parseDatastore(v: Json | undefined): DatastoreSettings | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) r.fail('datastore', 'must be an object');
  const type = r.str(v, 'type', 'datastore');
  switch (type) {
    case 'yaml': {
      onlyKeys(v, ['type', 'dir'], 'datastore');
      const dir = r.str(v, 'dir', 'datastore');
      if (dir === undefined || !dir.startsWith('/')) r.fail('datastore.dir', 'must be an absolute path');
      return { type, dir };
    }
    case 'etcdv3': {
      const keys = ['prefix', 'caFile', 'certFile', 'keyFile', 'username', 'password'] as const;
      onlyKeys(v, ['type', 'endpoints', ...keys], 'datastore');
      const ev = v['endpoints'];
      const endpoints = (
        typeof ev === 'string' ? ev.split(',') : (r.strings(v, 'endpoints', 'datastore') ?? [])
      )
        .map((e) => e.trim())
        .filter((e) => e !== '');
      if (endpoints.length === 0) r.fail('datastore.endpoints', 'etcdv3 needs at least one endpoint');
      for (const e of endpoints)
        if (!/^https?:\/\/[^/]+\/?$/.test(e))
          r.fail('datastore.endpoints', `${JSON.stringify(e)} is not an http:// or https:// URL`);
      const out: { -readonly [K in (typeof keys)[number]]?: string } = {};
      for (const k of keys) {
        const x = r.str(v, k, 'datastore');
        if (x !== undefined) out[k] = x;
      }
      return { type, endpoints, ...out };
    }
    case 'kubernetes': {
      onlyKeys(v, ['type', 'kubeconfig'], 'datastore');
      const kubeconfig = r.str(v, 'kubeconfig', 'datastore');
      return kubeconfig === undefined ? { type } : { type, kubeconfig };
    }
    default:
      return r.fail(
        'datastore.type',
        `must be yaml, etcdv3 or kubernetes, not ${JSON.stringify(type ?? null)}`,
      );
  }
}

function parseKubernetes(v: Json | undefined): KubernetesSettings {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) r.fail('kubernetes', 'must be an object');
  // Calico's k8s_api_root and node_name have no Tabby meaning: refused, not ignored.
  onlyKeys(v, ['kubeconfig'], 'kubernetes');
  const kubeconfig = r.str(v, 'kubeconfig', 'kubernetes');
  if (kubeconfig === undefined) return {};
  if (!kubeconfig.startsWith('/')) r.fail('kubernetes.kubeconfig', 'must be an absolute path');
  return { kubeconfig };
}

/**
 * The kubeconfig the pod's namespace labels are read with: Calico's `kubernetes.kubeconfig`,
 * else that of a `kubernetes` datastore (the same API server). Undefined: none configured.
 */
export function namespaceKubeconfig(conf: NetConf): string | undefined {
  return (
    conf.kubernetes.kubeconfig ??
    (conf.datastore?.type === 'kubernetes' ? conf.datastore.kubeconfig : undefined)
  );
}

function parseNodeSocket(v: Json | undefined): string | false | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'none') return false;
  if (typeof v !== 'string' || !v.startsWith('/'))
    return r.fail('node_socket', `must be an absolute path or none, not ${JSON.stringify(v)}`);
  return v;
}

function parseLogLevel(v: Json | undefined): LogLevel {
  if (v === undefined || v === null) return 'warn';
  const l = typeof v === 'string' ? v.toLowerCase() : '';
  if (l === 'warning') return 'warn';
  if (l === 'debug' || l === 'info' || l === 'warn' || l === 'error') return l;
  return r.fail('log_level', `must be debug, info, warn or error, not ${JSON.stringify(v)}`);
}

/** The version alone (VERSION reads only this, and tolerates anything else). */
export function decodeJson(text: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      'error decoding network config',
      e instanceof Error ? e.message : String(e),
    );
  }
  if (!isObject(v))
    throw new CniError(ErrorCode.DecodingFailure, 'error decoding network config', 'not a JSON object');
  return v;
}

export function parseNetConf(text: string): NetConf {
  const o = decodeJson(text);
  const cv = o['cniVersion'];
  if (cv !== undefined && typeof cv !== 'string')
    r.fail('cniVersion', `must be a string, not ${JSON.stringify(cv)}`);
  const cniVersion = cv ?? '';
  requireSupported(cniVersion);
  const name = r.str(o, 'name', '');
  if (name === undefined || name === '') r.fail('name', 'missing network name');
  if (!isValidName(name))
    r.fail(
      'name',
      `${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, _ . -`,
    );
  const type = r.str(o, 'type', '');
  if (type === undefined || type === '') r.fail('type', 'is required');
  if (o['policy'] !== undefined)
    unsupported('policy', o['policy'], 'Tabby enforces no network policy; remove the field');
  // 0 is Calico's "not set" (its NetConf.MTU is a plain int): the MTU file decides.
  const mtuField = r.uint(o, 'mtu', '');
  const mtu = mtuField === 0 ? undefined : mtuField;
  if (mtu !== undefined && !isMtu(mtu))
    r.fail('mtu', `must be ${MIN_MTU} to ${MAX_MTU} (or 0: from the MTU file), not ${mtu}`);
  const nodename = r.str(o, 'nodename', '');
  if (nodename === '')
    r.fail('nodename', 'must not be empty (leave it out to use /var/lib/calico/nodename or the hostname)');
  const rc = o['runtimeConfig'];
  if (rc !== undefined && rc !== null && !isObject(rc)) r.fail('runtimeConfig', 'must be an object');
  const prev = o['prevResult'];
  const va = o['cni.dev/valid-attachments'];
  let validAttachments: ValidAttachment[] | undefined;
  if (va !== undefined && va !== null) {
    if (!Array.isArray(va)) r.fail('cni.dev/valid-attachments', 'must be a list');
    validAttachments = va.map((x, i) => {
      const p = `cni.dev/valid-attachments[${i}]`;
      if (!isObject(x)) return r.fail(p, 'must be an object');
      const containerID = r.str(x, 'containerID', p);
      const ifname = r.str(x, 'ifname', p);
      if (containerID === undefined || containerID === '') return r.fail(`${p}.containerID`, 'is required');
      return { containerID, ifname: ifname ?? '' };
    });
  }
  const ipam = parseIpam(o['ipam']);
  const datastore = parseDatastore(o['datastore']);
  const nodeSocket = parseNodeSocket(o['node_socket']);
  return {
    cniVersion,
    name,
    type,
    ...(mtu === undefined ? {} : { mtu }),
    requireMtuFile: flag(o, 'require_mtu_file', '', false),
    kubernetes: parseKubernetes(o['kubernetes']),
    ...(ipam === undefined ? {} : { ipam }),
    ...(datastore === undefined ? {} : { datastore }),
    ...(nodeSocket === undefined ? {} : { nodeSocket }),
    logLevel: parseLogLevel(o['log_level']),
    ...(nodename === undefined ? {} : { nodename }),
    dns: parseDns(o['dns'], r, 'dns'),
    ...(prev === undefined || prev === null
      ? {}
      : { prevResult: parseResult(prev, cniVersion, 'prevResult') }),
    runtimeConfig: isObject(rc) ? rc : {},
    ...(validAttachments === undefined ? {} : { validAttachments }),
    raw: o,
  };
}

export const isDelegated = (i: TabbyIpamConf | DelegatedIpamConf): i is DelegatedIpamConf => 'delegated' in i;

/** An IP in text, checked; used for gateways the dataplane reports. */
export const isAddress = (s: string): boolean => isIP(s) !== 0;
