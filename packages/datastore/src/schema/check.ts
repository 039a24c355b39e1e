// Walks a value against a schema: every problem comes back with its field path
// (`spec.peers[2].asNumber`) and a reason; unknown fields are problems too (a typo in a
// manifest must not be silently dropped). `applyDefaults` fills in declared defaults.
import { parseSelector, SelectorSyntaxError } from '../selector/index.js';
import { parseCidr, parseIp } from './ip.js';
import type { PropNode, Schema, SchemaNode, StringFormat } from './schema.js';

export interface Issue {
  /** Dotted path from the document root, with [i] for list items and ["k"] for odd map keys. */
  readonly path: string;
  readonly reason: string;
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}

export function check<T>(schema: Schema<T>, value: unknown, path = ''): Issue[] {
  const out: Issue[] = [];
  walk(schema.node, value, path, out);
  return out;
}

export function checkNode(node: SchemaNode, value: unknown, path: string, out: Issue[]): void {
  walk(node, value, path, out);
}

function walk(node: SchemaNode, v: unknown, path: string, out: Issue[]): void {
  if (v === null && node.nullable === true) return;
  switch (node.type) {
    case 'string': {
      if (typeof v !== 'string')
        return void out.push({ path, reason: `must be a string, not ${describe(v)}` });
      if (node.enum !== undefined && !node.enum.includes(v))
        return void out.push({
          path,
          reason: `must be one of ${node.enum.map((e) => JSON.stringify(e)).join(', ')}, not ${JSON.stringify(v)}`,
        });
      if (node.maxLength !== undefined && v.length > node.maxLength)
        out.push({ path, reason: `must be at most ${node.maxLength} characters, not ${v.length}` });
      if (node.pattern !== undefined && !new RegExp(node.pattern).test(v))
        out.push({ path, reason: `${JSON.stringify(v)} does not match ${node.pattern}` });
      if (node.format !== undefined) {
        const why = checkFormat(node.format, v);
        if (why !== undefined) out.push({ path, reason: why });
      }
      return;
    }
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v))
        return void out.push({ path, reason: `must be an integer, not ${describe(v)}` });
      if (node.minimum !== undefined && v < node.minimum)
        out.push({ path, reason: `must be at least ${node.minimum}, not ${v}` });
      if (node.maximum !== undefined && v > node.maximum)
        out.push({ path, reason: `must be at most ${node.maximum}, not ${v}` });
      return;
    case 'boolean':
      if (typeof v !== 'boolean') out.push({ path, reason: `must be true or false, not ${describe(v)}` });
      return;
    case 'intOrString':
      if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v)))
        out.push({ path, reason: `must be an integer or a string, not ${describe(v)}` });
      return;
    case 'array':
      if (!Array.isArray(v)) return void out.push({ path, reason: `must be a list, not ${describe(v)}` });
      if (node.maxItems !== undefined && v.length > node.maxItems)
        out.push({ path, reason: `must have at most ${node.maxItems} items, not ${v.length}` });
      v.forEach((item, i) => walk(node.items, item, joinPath(path, i), out));
      return;
    case 'map':
      if (!isPlainObject(v)) return void out.push({ path, reason: `must be a map, not ${describe(v)}` });
      for (const [k, item] of Object.entries(v)) walk(node.values, item, joinPath(path, k), out);
      return;
    case 'object': {
      if (!isPlainObject(v)) return void out.push({ path, reason: `must be an object, not ${describe(v)}` });
      if (node.open === true) return;
      const before = out.length;
      for (const [k, prop] of Object.entries(node.properties)) {
        const item = v[k];
        if (item === undefined) {
          if (!prop.optional) out.push({ path: joinPath(path, k), reason: 'is required' });
          continue;
        }
        walk(prop.node, item, joinPath(path, k), out);
      }
      for (const k of Object.keys(v))
        if (!Object.hasOwn(node.properties, k))
          out.push({ path: joinPath(path, k), reason: 'is not a known field' });
      // Cross-field rules only once the fields themselves are sound.
      if (out.length === before)
        for (const r of node.rules ?? []) {
          const field = r.check(v);
          if (field !== undefined)
            out.push({ path: field === '' ? path : joinPath(path, field), reason: r.message });
        }
      return;
    }
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function checkFormat(f: StringFormat, v: string): string | undefined {
  switch (f) {
    case 'ip':
      return parseIp(v) === undefined ? `${JSON.stringify(v)} is not an IP address` : undefined;
    case 'ipv4':
      return parseIp(v)?.family === 4 ? undefined : `${JSON.stringify(v)} is not an IPv4 address`;
    case 'ipv6':
      return parseIp(v)?.family === 6 ? undefined : `${JSON.stringify(v)} is not an IPv6 address`;
    case 'cidr':
      return parseCidr(v) === undefined ? `${JSON.stringify(v)} is not a CIDR (address/length)` : undefined;
    case 'ipOrCidr':
      return parseCidr(v) === undefined && parseIp(v) === undefined
        ? `${JSON.stringify(v)} is not an IP address or CIDR`
        : undefined;
    case 'ipPort':
      return parseIpPort(v) === undefined
        ? `${JSON.stringify(v)} is not an address with an optional port (10.0.0.1, 10.0.0.1:179, [fd00::1]:179)`
        : undefined;
    case 'selector':
      try {
        parseSelector(v);
        return undefined;
      } catch (e) {
        if (e instanceof SelectorSyntaxError) return `bad selector ${JSON.stringify(v)}: ${e.message}`;
        throw e;
      }
    case 'asNumber':
      return parseAsNumber(v) === undefined ? `${JSON.stringify(v)} is not an AS number` : undefined;
    case 'duration':
      return parseDuration(v) === undefined
        ? `${JSON.stringify(v)} is not a duration (e.g. 90s, 2m, 1h30m)`
        : undefined;
    case 'dnsLabel':
      return DNS_LABEL.test(v) ? undefined : `${JSON.stringify(v)} is not a DNS label (RFC 1123)`;
    case 'dnsSubdomain':
      return v.length <= 253 && v.split('.').every((l) => DNS_LABEL.test(l))
        ? undefined
        : `${JSON.stringify(v)} is not a DNS subdomain (RFC 1123: lower-case alphanumerics, '-' and '.')`;
  }
}

/** `10.0.0.1`, `10.0.0.1:179`, `fd00::1`, `[fd00::1]:179` → address and optional port. */
export function parseIpPort(v: string): { ip: string; port?: number } | undefined {
  let ip = v;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (bracket !== null) {
    ip = bracket[1]!;
    portText = bracket[2];
    if (parseIp(ip)?.family !== 6) return undefined;
  } else if (v.split(':').length === 2) {
    [ip, portText] = v.split(':') as [string, string];
  }
  if (parseIp(ip) === undefined) return undefined;
  if (portText === undefined) return { ip };
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) return undefined;
  return { ip, port };
}

/** "64512" or asdot "1.10" → the 32-bit number; undefined when neither or out of range. */
export function parseAsNumber(v: string): number | undefined {
  const dot = /^(\d{1,5})\.(\d{1,5})$/.exec(v);
  if (dot !== null) {
    const hi = Number(dot[1]);
    const lo = Number(dot[2]);
    return hi <= 0xffff && lo <= 0xffff ? hi * 65536 + lo : undefined;
  }
  if (!/^\d{1,10}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= 0xffffffff ? n : undefined;
}

/** Fills declared defaults in place (objects only; never replaces what is there). */
export function applyDefaults<T>(schema: Schema<T>, value: unknown): void {
  fill(schema.node, value);
}

function fill(node: SchemaNode, v: unknown): void {
  if (node.type === 'array' && Array.isArray(v)) for (const item of v) fill(node.items, item);
  else if (node.type === 'map' && isPlainObject(v))
    for (const item of Object.values(v)) fill(node.values, item);
  else if (node.type === 'object' && isPlainObject(v) && node.open !== true)
    for (const [k, prop] of Object.entries(node.properties)) {
      if (v[k] === undefined && prop.default !== undefined) v[k] = structuredClone(prop.default);
      if (v[k] !== undefined) fill(prop.node, v[k]);
    }
}

export type { PropNode };

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration string (time.ParseDuration, no sign) in milliseconds; undefined when malformed. */
export function parseDuration(v: string): number | undefined {
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let end = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    ms += Number(m[1]) * DURATION_UNIT_MS[m[2]!]!;
    end = re.lastIndex;
  }
  return end === v.length && v.length > 0 ? ms : undefined;
}
