// tabby-node's CNI service: what the plugin asks the node daemon over the daemon's control
// socket (one JSON object per line each way, answered in order; packages/node/src/daemon/
// server.ts) and what the daemon answers. The plugin's half is ./client.ts, the daemon's
// packages/node/src/daemon/cni-service.ts. Each side checks what it receives with the
// parsers here: a message that does not fit is an error naming the field, never a
// half-understood request. Every operation is one the plugin does in-process without the
// daemon (../ipam/operations.ts), with the same arguments and the same errors, carried as
// `code` (the datastore's and the IPAM's own codes, or a ServiceCode).
import type {
  Assignment,
  EndpointKey,
  NamespaceLabels,
  NodeReadiness,
  PoolRoom,
  StoredEndpoint,
  WorkloadEndpointDoc,
} from '../commands/interfaces.js';
import type { DatastoreSettings } from '../spec/config.js';

/** Where tabby-node listens by default (its --socket, TABBY_NODE_SOCKET). */
export const DEFAULT_NODE_SOCKET = '/var/run/tabby/node.sock';

/** This protocol's version: `cni.hello` fails when the two sides differ. */
export const CNI_PROTOCOL = 1;

/** What each request carries besides `cmd`. */
export interface CniRequests {
  /** First on every connection: the daemon serves CNI with this protocol. */
  readonly 'cni.hello': { readonly protocol: number };
  /**
   * Assigns by handle. Without `namespace`, a pool that selects by namespace makes the
   * daemon answer NamespaceLabelsNeeded (nothing assigned) and the plugin asks again with them.
   */
  readonly 'cni.assign': {
    readonly assignment: Assignment;
    readonly namespace?: { readonly labels: NamespaceLabels };
  };
  readonly 'cni.release': { readonly handle: string };
  readonly 'cni.addresses': { readonly handle: string };
  readonly 'cni.handles': { readonly network: string };
  readonly 'cni.endpoint.put': { readonly endpoint: WorkloadEndpointDoc };
  readonly 'cni.endpoint.get': { readonly key: EndpointKey };
  readonly 'cni.endpoint.delete': { readonly key: EndpointKey };
  readonly 'cni.endpoint.list': { readonly node: string; readonly network: string };
  readonly 'cni.pools': Record<never, never>;
  readonly 'cni.ready': Record<never, never>;
  /**
   * A whole ADD, DEL or CHECK run in the daemon (./delegate.ts, ../serve-run.ts): the
   * invocation's environment (the CNI_ variables and the few others the plugin reads) and
   * its stdin, with what the plugin sees that the daemon must see alike: whether the pod's
   * namespace file exists, and its own network namespace (the inode of /proc/self/ns/net).
   * Sent without `cni.hello`, so it carries the protocol version itself.
   */
  readonly 'cni.run': {
    readonly protocol: number;
    readonly env: Readonly<Record<string, string>>;
    readonly stdin: string;
    readonly netnsVisible: boolean;
    readonly hostNetns: number;
  };
}

/**
 * Which datastore the daemon works on, as `cni.hello` tells it: where, without credentials
 * (null: not known, e.g. an in-memory one in tests).
 */
export type DatastoreWhere =
  | { readonly type: 'yaml'; readonly dir: string }
  | { readonly type: 'etcdv3'; readonly endpoints: readonly string[]; readonly prefix?: string }
  | { readonly type: 'kubernetes' };

/** Where a datastore configuration points, credentials left out. */
export function datastoreWhere(c: DatastoreSettings): DatastoreWhere {
  switch (c.type) {
    case 'yaml':
      return { type: 'yaml', dir: c.dir };
    case 'etcdv3':
      return {
        type: 'etcdv3',
        endpoints: c.endpoints,
        ...(c.prefix === undefined ? {} : { prefix: c.prefix }),
      };
    case 'kubernetes':
      return { type: 'kubernetes' };
  }
}

/**
 * Whether the daemon's datastore can be the one the plugin's config names: the same YAML
 * directory; etcd with an endpoint in common and the same prefix; any Kubernetes API (the
 * plugin's kubeconfig and the daemon's in-cluster account name the same server in
 * different words, and which server a kubeconfig names is not known without reading it).
 */
export function sameDatastore(daemon: DatastoreWhere, config: DatastoreSettings): boolean {
  const trim = (s: string): string => s.replace(/\/+$/, '');
  switch (config.type) {
    case 'yaml':
      return daemon.type === 'yaml' && trim(daemon.dir) === trim(config.dir);
    case 'etcdv3':
      return (
        daemon.type === 'etcdv3' &&
        (daemon.prefix ?? '') === (config.prefix ?? '') &&
        daemon.endpoints.some((e) => config.endpoints.map(trim).includes(trim(e)))
      );
    case 'kubernetes':
      return daemon.type === 'kubernetes';
  }
}

/** What each request is answered with besides `ok: true`. */
export interface CniAnswers {
  readonly 'cni.hello': {
    readonly protocol: number;
    readonly node: string;
    readonly datastore: DatastoreWhere | null;
  };
  /** Bare addresses, IPv4 first. */
  readonly 'cni.assign': { readonly addresses: readonly string[] };
  readonly 'cni.release': Record<never, never>;
  readonly 'cni.addresses': { readonly addresses: readonly string[] };
  readonly 'cni.handles': { readonly handles: readonly string[] };
  readonly 'cni.endpoint.put': Record<never, never>;
  readonly 'cni.endpoint.get': { readonly endpoint: WorkloadEndpointDoc | null };
  readonly 'cni.endpoint.delete': { readonly result: 'deleted' | 'absent' };
  readonly 'cni.endpoint.list': { readonly endpoints: readonly StoredEndpoint[] };
  readonly 'cni.pools': { readonly pools: readonly PoolRoom[] };
  readonly 'cni.ready': NodeReadiness;
  /** What the plugin prints and exits with, and the plugin's log lines for its stderr. */
  readonly 'cni.run': { readonly stdout: string; readonly exitCode: number; readonly stderr: string };
}

export type CniCommandName = keyof CniRequests;
export type CniRequestOf<K extends CniCommandName> = { readonly cmd: K } & CniRequests[K];
export type CniRequest = { [K in CniCommandName]: CniRequestOf<K> }[CniCommandName];
export type CniAnswer<K extends CniCommandName> = { readonly ok: true } & CniAnswers[K];

/** A request the service could not carry out. */
export interface CniFailure {
  readonly ok: false;
  /** What went wrong, for people: the datastore's or IPAM's message. */
  readonly error: string;
  /** For the plugin: a datastore or IPAM error code (`PoolExhausted`, `Unavailable`, ...) or a ServiceCode. */
  readonly code: string;
  /** NamespaceLabelsNeeded: the pools that select by namespace (`name (cidr)`). */
  readonly pools?: readonly string[];
}

export type CniReply = { [K in CniCommandName]: CniAnswer<K> }[CniCommandName] | CniFailure;

/** The service's own failure codes, beside the datastore's and the IPAM's. */
export const ServiceCode = {
  /** The request does not fit this protocol: a bug on one side or the other. */
  BadRequest: 'BadRequest',
  /** The daemon serves no CNI requests, or another protocol version (the plugin works without it). */
  Unsupported: 'Unsupported',
  /** Ask again with the pod namespace's labels (`pools` names the pools that select by namespace). */
  NamespaceLabelsNeeded: 'NamespaceLabelsNeeded',
  /** A failure that carried no code of its own. */
  Internal: 'Internal',
  /** `cni.run` declined, nothing done (the reason in `error`): the plugin runs the invocation itself. */
  NotHere: 'NotHere',
} as const;

export const CNI_COMMANDS: readonly CniCommandName[] = [
  'cni.hello',
  'cni.assign',
  'cni.release',
  'cni.addresses',
  'cni.handles',
  'cni.endpoint.put',
  'cni.endpoint.get',
  'cni.endpoint.delete',
  'cni.endpoint.list',
  'cni.pools',
  'cni.ready',
  'cni.run',
];

export const isCniCommand = (cmd: unknown): cmd is CniCommandName =>
  typeof cmd === 'string' && (CNI_COMMANDS as readonly string[]).includes(cmd);

/** A message that does not fit the protocol; `path` names the field (`assignment.num4`). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path === '' ? 'the message' : path} ${reason}`);
  }
}

/** At most this many addresses in one assignment (the plugin asks for one per family). */
export const MAX_ADDRESSES = 16;

// ---------------------------------------------------------------- checking what arrives

type Obj = Readonly<Record<string, unknown>>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, k: string): string => (path === '' ? k : `${path}.${k}`);

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new ProtocolError(path, 'must be an object');
  return v;
}

/** Requests are checked strictly: an unknown field is refused, not ignored. */
function only(o: Obj, keys: readonly string[], path: string): void {
  for (const k of Object.keys(o))
    if (!keys.includes(k)) throw new ProtocolError(at(path, k), `is not a field here (${keys.join(', ')})`);
}

function str(o: Obj, k: string, path: string, nonEmpty = true): string {
  const v = o[k];
  if (typeof v !== 'string') throw new ProtocolError(at(path, k), 'must be a string');
  if (nonEmpty && v === '') throw new ProtocolError(at(path, k), 'must not be empty');
  return v;
}

function optStr(o: Obj, k: string, path: string): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, path, false);
}

function strs(o: Obj, k: string, path: string, max = Infinity): string[] {
  const v = o[k];
  if (!Array.isArray(v)) throw new ProtocolError(at(path, k), 'must be a list of strings');
  if (v.length > max) throw new ProtocolError(at(path, k), `must hold at most ${max} entries`);
  return v.map((x, i) => {
    if (typeof x !== 'string' || x === '')
      throw new ProtocolError(`${at(path, k)}[${i}]`, 'must be a non-empty string');
    return x;
  });
}

function count(o: Obj, k: string, path: string, max: number): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new ProtocolError(at(path, k), `must be a whole number from 0 to ${max}`);
  return v;
}

function num(o: Obj, k: string, path: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ProtocolError(at(path, k), 'must be a number, at least 0');
  return v;
}

function bool(o: Obj, k: string, path: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') throw new ProtocolError(at(path, k), 'must be true or false');
  return v;
}

function stringMap(o: Obj, k: string, path: string): Record<string, string> {
  const m = obj(o[k], at(path, k));
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw new ProtocolError(at(at(path, k), key), 'must be a string');
    out[key] = v;
  }
  return out;
}

function assignment(v: unknown, path: string): Assignment {
  const o = obj(v, path);
  const base = {
    handle: str(o, 'handle', path),
    node: str(o, 'node', path),
    attrs: stringMap(o, 'attrs', path),
  };
  switch (o['kind']) {
    case 'auto': {
      only(o, ['kind', 'handle', 'node', 'attrs', 'num4', 'num6', 'pools'], path);
      const a = {
        ...base,
        kind: 'auto' as const,
        num4: count(o, 'num4', path, MAX_ADDRESSES),
        num6: count(o, 'num6', path, MAX_ADDRESSES),
        pools: strs(o, 'pools', path),
      };
      if (a.num4 + a.num6 === 0) throw new ProtocolError(path, 'asks for no address (num4 and num6 are 0)');
      return a;
    }
    case 'explicit': {
      only(o, ['kind', 'handle', 'node', 'attrs', 'ips'], path);
      const ips = strs(o, 'ips', path, MAX_ADDRESSES);
      if (ips.length === 0) throw new ProtocolError(at(path, 'ips'), 'must name at least one address');
      return { ...base, kind: 'explicit', ips };
    }
    default:
      throw new ProtocolError(at(path, 'kind'), 'must be auto or explicit');
  }
}

function endpointKey(v: unknown, path: string): EndpointKey {
  const o = obj(v, path);
  only(o, ['namespace', 'name'], path);
  return { namespace: str(o, 'namespace', path), name: str(o, 'name', path) };
}

function endpointDoc(v: unknown, path: string, strict: boolean): WorkloadEndpointDoc {
  const o = obj(v, path);
  if (strict) only(o, ['namespace', 'name', 'labels', 'spec'], path);
  const sp = at(path, 'spec');
  const s = obj(o['spec'], sp);
  if (strict)
    only(
      s,
      [
        'orchestrator',
        'node',
        'containerID',
        'pod',
        'workload',
        'endpoint',
        'interfaceName',
        'ipNetworks',
        'mac',
      ],
      sp,
    );
  const orchestrator = s['orchestrator'];
  if (orchestrator !== 'k8s' && orchestrator !== 'cni')
    throw new ProtocolError(at(sp, 'orchestrator'), 'must be k8s or cni');
  const pod = optStr(s, 'pod', sp);
  const workload = optStr(s, 'workload', sp);
  return {
    namespace: str(o, 'namespace', path),
    name: str(o, 'name', path),
    labels: stringMap(o, 'labels', path),
    spec: {
      orchestrator,
      node: str(s, 'node', sp, false),
      containerID: str(s, 'containerID', sp, false),
      ...(pod === undefined ? {} : { pod }),
      ...(workload === undefined ? {} : { workload }),
      endpoint: str(s, 'endpoint', sp, false),
      interfaceName: str(s, 'interfaceName', sp, false),
      ipNetworks: strs(s, 'ipNetworks', sp),
      mac: str(s, 'mac', sp, false),
    },
  };
}

/** A request as the daemon receives it (already JSON-decoded); ProtocolError when it does not fit. */
export function parseCniRequest(v: unknown): CniRequest {
  const o = obj(v, '');
  const cmd = o['cmd'];
  if (!isCniCommand(cmd)) throw new ProtocolError('cmd', `${JSON.stringify(cmd)} is not a CNI request`);
  const fields = (...keys: string[]): void => only(o, ['cmd', ...keys], '');
  switch (cmd) {
    case 'cni.hello':
      fields('protocol');
      return { cmd, protocol: count(o, 'protocol', '', Number.MAX_SAFE_INTEGER) };
    case 'cni.assign': {
      fields('assignment', 'namespace');
      const a = assignment(o['assignment'], 'assignment');
      if (o['namespace'] === undefined) return { cmd, assignment: a };
      const n = obj(o['namespace'], 'namespace');
      only(n, ['labels'], 'namespace');
      return { cmd, assignment: a, namespace: { labels: stringMap(n, 'labels', 'namespace') } };
    }
    case 'cni.release':
    case 'cni.addresses':
      fields('handle');
      return { cmd, handle: str(o, 'handle', '') };
    case 'cni.handles':
      fields('network');
      return { cmd, network: str(o, 'network', '') };
    case 'cni.endpoint.put':
      fields('endpoint');
      return { cmd, endpoint: endpointDoc(o['endpoint'], 'endpoint', true) };
    case 'cni.endpoint.get':
    case 'cni.endpoint.delete':
      fields('key');
      return { cmd, key: endpointKey(o['key'], 'key') };
    case 'cni.endpoint.list':
      fields('node', 'network');
      return { cmd, node: str(o, 'node', ''), network: str(o, 'network', '') };
    case 'cni.pools':
    case 'cni.ready':
      fields();
      return { cmd };
    case 'cni.run':
      fields('protocol', 'env', 'stdin', 'netnsVisible', 'hostNetns');
      return {
        cmd,
        protocol: count(o, 'protocol', '', Number.MAX_SAFE_INTEGER),
        env: stringMap(o, 'env', ''),
        stdin: str(o, 'stdin', '', false),
        netnsVisible: bool(o, 'netnsVisible', ''),
        hostNetns: count(o, 'hostNetns', '', Number.MAX_SAFE_INTEGER),
      };
  }
}

function datastoreWhereOf(v: unknown): DatastoreWhere {
  const o = obj(v, 'datastore');
  switch (o['type']) {
    case 'yaml':
      return { type: 'yaml', dir: str(o, 'dir', 'datastore') };
    case 'etcdv3': {
      const prefix = optStr(o, 'prefix', 'datastore');
      return {
        type: 'etcdv3',
        endpoints: strs(o, 'endpoints', 'datastore'),
        ...(prefix === undefined ? {} : { prefix }),
      };
    }
    case 'kubernetes':
      return { type: 'kubernetes' };
    default:
      throw new ProtocolError('datastore.type', 'must be yaml, etcdv3 or kubernetes');
  }
}

function storedEndpoint(v: unknown, path: string): StoredEndpoint {
  const o = obj(v, path);
  return {
    namespace: str(o, 'namespace', path),
    name: str(o, 'name', path),
    containerID: str(o, 'containerID', path, false),
    endpoint: str(o, 'endpoint', path, false),
  };
}

function poolRoom(v: unknown, path: string): PoolRoom {
  const o = obj(v, path);
  return {
    name: str(o, 'name', path),
    cidr: str(o, 'cidr', path),
    disabled: bool(o, 'disabled', path),
    capacity: num(o, 'capacity', path),
    inUse: num(o, 'inUse', path),
    free: num(o, 'free', path),
  };
}

/**
 * The daemon's answer to `cmd` as the plugin receives it (already JSON-decoded): the
 * answer, or the failure the daemon reported; ProtocolError when it is neither. Fields the
 * plugin does not know are ignored (what it reads is checked).
 */
export function parseCniAnswer<K extends CniCommandName>(cmd: K, v: unknown): CniAnswer<K> | CniFailure {
  const o = obj(v, '');
  if (o['ok'] === false) {
    const pools = o['pools'] === undefined ? undefined : strs(o, 'pools', '');
    return {
      ok: false,
      error: str(o, 'error', '', false),
      // An older daemon answers an unknown command without a code.
      code: o['code'] === undefined ? ServiceCode.Unsupported : str(o, 'code', ''),
      ...(pools === undefined ? {} : { pools }),
    };
  }
  if (o['ok'] !== true) throw new ProtocolError('ok', 'must be true or false');
  return { ok: true, ...answerFields(cmd, o) } as CniAnswer<K>;
}

function answerFields(cmd: CniCommandName, o: Obj): CniAnswers[CniCommandName] {
  switch (cmd) {
    case 'cni.hello':
      return {
        protocol: count(o, 'protocol', '', Number.MAX_SAFE_INTEGER),
        node: str(o, 'node', '', false),
        datastore: o['datastore'] === null ? null : datastoreWhereOf(o['datastore']),
      };
    case 'cni.assign':
    case 'cni.addresses':
      return { addresses: strs(o, 'addresses', '') };
    case 'cni.handles':
      return { handles: strs(o, 'handles', '') };
    case 'cni.endpoint.get':
      return { endpoint: o['endpoint'] === null ? null : endpointDoc(o['endpoint'], 'endpoint', false) };
    case 'cni.endpoint.delete': {
      const r = o['result'];
      if (r !== 'deleted' && r !== 'absent') throw new ProtocolError('result', 'must be deleted or absent');
      return { result: r };
    }
    case 'cni.endpoint.list': {
      const l = o['endpoints'];
      if (!Array.isArray(l)) throw new ProtocolError('endpoints', 'must be a list');
      return { endpoints: l.map((e, i) => storedEndpoint(e, `endpoints[${i}]`)) };
    }
    case 'cni.pools': {
      const l = o['pools'];
      if (!Array.isArray(l)) throw new ProtocolError('pools', 'must be a list');
      return { pools: l.map((p, i) => poolRoom(p, `pools[${i}]`)) };
    }
    case 'cni.ready':
      return { ready: bool(o, 'ready', ''), reason: str(o, 'reason', '', false) };
    case 'cni.release':
    case 'cni.endpoint.put':
      return {};
    case 'cni.run':
      return {
        stdout: str(o, 'stdout', '', false),
        exitCode: count(o, 'exitCode', '', 255),
        stderr: str(o, 'stderr', '', false),
      };
  }
}
