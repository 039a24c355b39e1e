// The standalone daemon's YAML configuration: parsed, checked field by field, turned into a
// SpeakerConfig. Every error names the file, the field path and the reason, and a config
// with any error starts nothing.

import { readFile } from 'node:fs/promises';
import { YAMLParseError, parse } from 'yaml';
import type { Condition, Policy, Rule } from '../policy/index.js';
import { PolicyError, compilePolicy } from '../policy/index.js';
import type {
  Family,
  ListenRange,
  Origination,
  PeerSettings,
  PeerTemplate,
  SpeakerConfig,
} from '../speaker/index.js';
import { covers, formatIpPrefix, parseIpAddress, parseIpPrefix } from '../speaker/index.js';
import type { Asn } from '../wire/index.js';
import { parseCommunity, parseIpv4, parseIpv6, parseLargeCommunity, parsePrefix } from '../wire/index.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${file}: ${path}: ${reason}`);
  }
}

/** The daemon's peer settings are the speaker's. */
export type DaemonPeerSettings = PeerSettings;

export interface DaemonConfig extends SpeakerConfig {
  readonly peers: readonly DaemonPeerSettings[];
  /** Local socket for `bgp-ts status` / `bgp-ts rib`. */
  readonly controlSocket: string;
  /** Prometheus metrics; undefined: not served. */
  readonly metrics?: { readonly address: string; readonly port: number };
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}

class V {
  constructor(
    readonly file: string,
    readonly v: unknown,
    readonly path: string,
  ) {}
  fail(reason: string): never {
    throw new ConfigError(this.file, this.path, reason);
  }
  obj(allowed: readonly string[]): Record<string, unknown> {
    if (typeof this.v !== 'object' || this.v === null || Array.isArray(this.v))
      this.fail('expected a mapping');
    const o = this.v as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!allowed.includes(k)) this.at(k).fail(`unknown field (expected one of: ${allowed.join(', ')})`);
    return o;
  }
  at(k: string | number): V {
    const child = typeof k === 'number' ? `${this.path}[${k}]` : this.path === '' ? k : `${this.path}.${k}`;
    const v =
      typeof k === 'number' ? (this.v as unknown[])[k] : (this.v as Record<string, unknown> | undefined)?.[k];
    return new V(this.file, v, child);
  }
  has(k: string): boolean {
    return (this.v as Record<string, unknown>)[k] !== undefined;
  }
  list(): V[] {
    if (!Array.isArray(this.v)) this.fail('expected a list');
    return (this.v as unknown[]).map((_, i) => this.at(i));
  }
  str(): string {
    if (typeof this.v !== 'string') this.fail('expected a string');
    return this.v;
  }
  bool(): boolean {
    if (typeof this.v !== 'boolean') this.fail('expected true or false');
    return this.v;
  }
  int(min: number, max: number): number {
    if (typeof this.v !== 'number' || !Number.isInteger(this.v) || this.v < min || this.v > max) {
      this.fail(`expected an integer from ${min} to ${max}`);
    }
    return this.v;
  }
  ipv6(): string {
    const s = this.str();
    if (parseIpv6(s) === undefined) this.fail(`not an IPv6 address: ${JSON.stringify(s)}`);
    return s;
  }
  ipv4(): string {
    const s = this.str();
    if (parseIpv4(s) === undefined) this.fail(`not an IPv4 address: ${JSON.stringify(s)}`);
    return s;
  }
  ip(): string {
    const s = this.str();
    if (parseIpv4(s) === undefined && parseIpv6(s) === undefined)
      this.fail(`not an IP address: ${JSON.stringify(s)}`);
    return s;
  }
  oneOf<T extends string>(values: readonly T[]): T {
    const s = this.str();
    if (!values.includes(s as T)) this.fail(`expected one of ${values.join(', ')}`);
    return s as T;
  }
  opt<T>(k: string, f: (v: V) => T): T | undefined {
    return this.has(k) ? f(this.at(k)) : undefined;
  }
}

const asnOf = (v: V) => v.int(1, 0xffffffff) as Asn;

function condition(v: V): Condition {
  const o = v.obj([
    'prefix',
    'community',
    'largeCommunity',
    'asPathLength',
    'asPathContains',
    'learned',
    'not',
  ]);
  const keys = Object.keys(o);
  if (keys.length !== 1)
    v.fail(
      'a condition has exactly one of: prefix, community, largeCommunity, asPathLength, asPathContains, learned, not',
    );
  if (v.has('prefix')) {
    return {
      prefix: v
        .at('prefix')
        .list()
        .map((p) => {
          if (typeof p.v === 'string') return { prefix: p.str() };
          p.obj(['prefix', 'ge', 'le']);
          const ge = p.opt('ge', (x) => x.int(0, 128));
          const le = p.opt('le', (x) => x.int(0, 128));
          return {
            prefix: p.at('prefix').str(),
            ...(ge === undefined ? {} : { ge }),
            ...(le === undefined ? {} : { le }),
          };
        }),
    };
  }
  if (v.has('community')) return { community: v.at('community').str() };
  if (v.has('largeCommunity')) return { largeCommunity: v.at('largeCommunity').str() };
  if (v.has('asPathLength')) {
    const l = v.at('asPathLength');
    l.obj(['min', 'max']);
    const min = l.opt('min', (x) => x.int(0, 10000));
    const max = l.opt('max', (x) => x.int(0, 10000));
    return { asPathLength: { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) } };
  }
  if (v.has('asPathContains')) return { asPathContains: asnOf(v.at('asPathContains')) };
  if (v.has('learned')) return { learned: v.at('learned').bool() };
  return { not: condition(v.at('not')) };
}

function policy(v: V): Policy {
  v.obj(['rules', 'default']);
  const rules = (v.opt('rules', (r) => r.list()) ?? []).map((r): Rule => {
    r.obj(['name', 'match', 'then']);
    const t = r.at('then');
    t.obj([
      'localPref',
      'med',
      'addCommunities',
      'removeCommunities',
      'addLargeCommunities',
      'prepend',
      'verdict',
    ]);
    const strs = (k: string) => t.opt(k, (x) => x.list().map((y) => y.str()));
    const prepend = t.opt('prepend', (p) => {
      p.obj(['asn', 'count']);
      return { asn: asnOf(p.at('asn')), count: p.at('count').int(1, 32) };
    });
    const then = {
      ...opt(
        'localPref',
        t.opt('localPref', (x) => x.int(0, 0xffffffff)),
      ),
      ...opt(
        'med',
        t.opt('med', (x) => x.int(0, 0xffffffff)),
      ),
      ...opt('addCommunities', strs('addCommunities')),
      ...opt('removeCommunities', strs('removeCommunities')),
      ...opt('addLargeCommunities', strs('addLargeCommunities')),
      ...opt('prepend', prepend),
      ...opt(
        'verdict',
        t.opt('verdict', (x) => x.oneOf(['accept', 'reject'] as const)),
      ),
    };
    const name = r.opt('name', (x) => x.str());
    return {
      ...(name === undefined ? {} : { name }),
      match: (r.opt('match', (m) => m.list()) ?? []).map(condition),
      then,
    };
  });
  const p: Policy = {
    rules,
    default: v.opt('default', (d) => d.oneOf(['accept', 'reject'] as const)) ?? 'accept',
  };
  try {
    compilePolicy(p, v.path);
  } catch (e) {
    if (e instanceof PolicyError) v.fail(e.message.slice(v.path.length + 2));
    throw e;
  }
  return p;
}

function opt<K extends string, T>(k: K, v: T | undefined): { [P in K]?: T } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: T };
}

/** What a peer and a listen range's template share. */
const TEMPLATE_FIELDS = [
  'asn',
  'localAsn',
  'localAddress',
  'nextHopIpv4',
  'nextHopIpv6',
  'holdTime',
  'keepaliveTime',
  'connectRetryTime',
  'password',
  'families',
  'routeReflectorClient',
  'routeServerClient',
  'nextHop',
  'allowAsIn',
  'maxPrefixes',
  'addPath',
  'ttlSecurity',
  'enforceFirstAs',
  'gracefulRestart',
  'import',
  'export',
] as const;

const PEER_FIELDS = ['name', 'address', 'port', 'passive', ...TEMPLATE_FIELDS] as const;

/** A dynamic peer is never dialled and always passive: no address, port or passive. */
const RANGE_FIELDS = ['name', 'prefix', 'maxPeers', ...TEMPLATE_FIELDS] as const;

function peer(v: V): DaemonPeerSettings {
  v.obj(PEER_FIELDS);
  return {
    name: v.at('name').str(),
    address: v.at('address').ip(),
    ...opt(
      'port',
      v.opt('port', (x) => x.int(1, 65535)),
    ),
    ...opt(
      'passive',
      v.opt('passive', (x) => x.bool()),
    ),
    ...template(v),
  };
}

function listenRange(v: V): ListenRange {
  v.obj(RANGE_FIELDS);
  const prefix = v.at('prefix').str();
  if (parseIpPrefix(prefix) === undefined)
    v.at('prefix').fail(`not a prefix with zero host bits: ${JSON.stringify(prefix)}`);
  return {
    name: v.at('name').str(),
    prefix,
    ...opt(
      'maxPeers',
      v.opt('maxPeers', (x) => x.int(1, 65535)),
    ),
    peer: template(v),
  };
}

/** A peer's settings but who it is (the fields of TEMPLATE_FIELDS). */
function template(v: V): PeerTemplate {
  const holdTime = v.opt('holdTime', (x) => {
    const h = x.int(0, 65535);
    // RFC 4271 §4.2: zero or at least three seconds.
    if (h === 1 || h === 2) x.fail('hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)');
    return h;
  });
  const password = v.opt('password', (x) => {
    const p = x.str();
    // Linux TCP_MD5SIG_MAXKEYLEN.
    if (p.length === 0 || Buffer.byteLength(p) > 80) x.fail('a TCP-MD5 password is 1 to 80 bytes');
    return p;
  });
  return {
    asn: asnOf(v.at('asn')),
    ...opt('localAsn', v.opt('localAsn', asnOf)),
    ...opt(
      'localAddress',
      v.opt('localAddress', (x) => x.ip()),
    ),
    ...opt(
      'nextHopIpv4',
      v.opt('nextHopIpv4', (x) => x.ipv4()),
    ),
    ...opt(
      'nextHopIpv6',
      v.opt('nextHopIpv6', (x) => x.ipv6()),
    ),
    ...opt('holdTime', holdTime),
    ...opt(
      'keepaliveTime',
      v.opt('keepaliveTime', (x) => x.int(1, 21845)),
    ),
    ...opt(
      'connectRetryTime',
      v.opt('connectRetryTime', (x) => x.int(1, 65535)),
    ),
    ...opt('password', password),
    ...opt(
      'families',
      v.opt('families', (x) => x.list().map((f) => f.oneOf<Family>(['ipv4-unicast', 'ipv6-unicast']))),
    ),
    ...opt(
      'reflectorClient',
      v.opt('routeReflectorClient', (x) => x.bool()),
    ),
    ...opt(
      'routeServerClient',
      v.opt('routeServerClient', (x) => x.bool()),
    ),
    ...opt(
      'nextHop',
      v.opt('nextHop', (x) => x.oneOf(['auto', 'self', 'keep'] as const)),
    ),
    ...opt(
      'allowAsIn',
      v.opt('allowAsIn', (x) => x.int(0, 10)),
    ),
    ...opt(
      'maxPrefixes',
      v.opt('maxPrefixes', (x) => x.int(1, 100_000_000)),
    ),
    ...opt(
      'addPath',
      v.opt('addPath', (x) => x.oneOf(['receive', 'send', 'both'] as const)),
    ),
    ...opt(
      'enforceFirstAs',
      v.opt('enforceFirstAs', (x) => x.bool()),
    ),
    ...opt(
      'ttlSecurity',
      v.opt('ttlSecurity', (x) => x.int(1, 254)),
    ),
    ...opt(
      'gracefulRestart',
      v.opt('gracefulRestart', (g) => {
        g.obj(['restartTime']);
        // RFC 4724 §3: the Restart Time is a 12-bit number of seconds.
        return { restartTime: g.opt('restartTime', (x) => x.int(0, 4095)) ?? 120 };
      }),
    ),
    ...opt('importPolicy', v.opt('import', policy)),
    ...opt('exportPolicy', v.opt('export', policy)),
  };
}

function origination(v: V): Origination {
  v.obj(['prefix', 'communities', 'largeCommunities', 'med', 'localPref']);
  const prefix = v.at('prefix').str();
  if (parsePrefix(prefix) === undefined)
    v.at('prefix').fail(`not a prefix with zero host bits: ${JSON.stringify(prefix)}`);
  const communities = v.opt('communities', (x) =>
    x.list().map((c) => parseCommunity(c.str()) ?? c.fail('expected "AS:value" or a well-known name')),
  );
  const large = v.opt('largeCommunities', (x) =>
    x.list().map((c) => parseLargeCommunity(c.str()) ?? c.fail('expected "global:local1:local2"')),
  );
  const attributes = {
    ...opt('communities', communities),
    ...opt('largeCommunities', large),
    ...opt(
      'multiExitDisc',
      v.opt('med', (x) => x.int(0, 0xffffffff)),
    ),
    ...opt(
      'localPref',
      v.opt('localPref', (x) => x.int(0, 0xffffffff)),
    ),
  };
  return { prefix, attributes };
}

/** Checks a parsed document; throws ConfigError for the first problem. */
export function checkConfig(doc: unknown, file: string): DaemonConfig {
  const v = new V(file, doc, '');
  v.obj([
    'routerId',
    'asn',
    'clusterId',
    'listen',
    'peers',
    'listenRanges',
    'originate',
    'restarting',
    'selectionDeferralTime',
    'controlSocket',
    'metrics',
    'logLevel',
  ]);
  const listen = v.opt('listen', (l) => {
    if (l.v === false) return null;
    l.obj(['address', 'port']);
    return {
      host: l.opt('address', (x) => x.ip()) ?? '0.0.0.0',
      port: l.opt('port', (x) => x.int(0, 65535)) ?? 179,
    };
  });
  const peers = (v.opt('peers', (p) => p.list()) ?? []).map(peer);
  const names = new Set<string>();
  const addrs = new Set<string>();
  peers.forEach((p, i) => {
    if (names.has(p.name))
      v.at('peers')
        .at(i)
        .at('name')
        .fail(`duplicate peer name ${JSON.stringify(p.name)}`);
    if (addrs.has(p.address)) v.at('peers').at(i).at('address').fail(`duplicate peer address ${p.address}`);
    names.add(p.name);
    addrs.add(p.address);
  });
  const listenRanges = (v.opt('listenRanges', (r) => r.list()) ?? []).map(listenRange);
  checkRanges(v, listenRanges, peers);
  const metrics = v.opt('metrics', (m) => {
    m.obj(['address', 'port']);
    return { address: m.opt('address', (x) => x.ip()) ?? '127.0.0.1', port: m.at('port').int(0, 65535) };
  });
  return {
    routerId: v.at('routerId').ipv4(),
    localAsn: asnOf(v.at('asn')),
    ...opt(
      'clusterId',
      v.opt('clusterId', (x) => x.ipv4()),
    ),
    ...(listen === null || listen === undefined
      ? listen === null
        ? {}
        : { listen: { host: '0.0.0.0', port: 179 } }
      : { listen }),
    peers,
    listenRanges,
    originate: (v.opt('originate', (o) => o.list()) ?? []).map(origination),
    ...opt(
      'restarting',
      v.opt('restarting', (x) => x.bool()),
    ),
    ...opt(
      'selectionDeferralTime',
      v.opt('selectionDeferralTime', (x) => x.int(1, 3600)),
    ),
    controlSocket: v.opt('controlSocket', (x) => x.str()) ?? '/run/bgp-ts.sock',
    ...opt('metrics', metrics),
    logLevel:
      v.opt('logLevel', (x) => x.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const)) ??
      'info',
  };
}

/**
 * Ranges may nest (the most specific wins) and hold configured peers (those win), but two
 * ranges with one prefix, or one name, are a mistake; so is a configured peer named like a
 * range's dynamic peer (`${range}_${address}`, for an address in that range).
 */
function checkRanges(v: V, ranges: readonly ListenRange[], peers: readonly PeerSettings[]): void {
  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  ranges.forEach((r, i) => {
    const at = v.at('listenRanges').at(i);
    const p = parseIpPrefix(r.prefix)!; // listenRange() checked it
    const key = formatIpPrefix(p);
    const nameAt = names.get(r.name);
    if (nameAt !== undefined)
      at.at('name').fail(`duplicate listen range name ${JSON.stringify(r.name)} (listenRanges[${nameAt}])`);
    const prefixAt = prefixes.get(key);
    if (prefixAt !== undefined) at.at('prefix').fail(`same prefix as listenRanges[${prefixAt}]`);
    names.set(r.name, i);
    prefixes.set(key, i);
  });
  peers.forEach((peer, i) => {
    for (const r of ranges) {
      const address = peer.name.startsWith(`${r.name}_`)
        ? parseIpAddress(peer.name.slice(r.name.length + 1))
        : undefined;
      if (address !== undefined && covers(parseIpPrefix(r.prefix)!, address))
        v.at('peers')
          .at(i)
          .at('name')
          .fail(`is the name of a dynamic peer of listen range ${JSON.stringify(r.name)}`);
    }
  });
}

export async function loadConfig(file: string): Promise<DaemonConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const at = e.linePos?.[0];
      throw new ConfigError(
        file,
        at === undefined ? '' : `line ${at.line}, column ${at.col}`,
        e.message.split('\n')[0] ?? 'YAML error',
      );
    }
    throw e;
  }
  return checkConfig(doc, file);
}
