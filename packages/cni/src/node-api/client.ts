// The plugin's side of tabby-node's CNI service (./protocol.ts): when the node daemon's
// socket answers, the IPAM and WorkloadEndpoint work of an invocation goes over one
// connection to the daemon, which does it on its open datastore; otherwise the plugin does
// it itself (../ipam/datastore-client.ts). This module loads nothing but node:net, so an
// ADD through the daemon never loads @tabby/datastore.
//
// When to fall back (decided once per invocation, before anything that changes state is
// asked): no socket file, connection refused (a stale socket), permission denied, no
// connection within connectTimeoutMs, or no usable answer to `cni.hello` within
// helloTimeoutMs (an older daemon, one without the CNI service, another protocol). Once
// the daemon has answered hello, nothing falls back: a request that times out or loses its
// connection fails with 11, since the daemon may have done it anyway; for `cni.assign`,
// the in-process path would assign the handle a second address. The runtime's DEL of the
// failed ADD (SPEC.md: "a delete must still be executed even if the add fails") releases
// whatever the daemon assigned.
import { endpointError, ipamError } from '../commands/errors.js';
import type {
  EndpointKey,
  EndpointStore,
  IpamAllocation,
  IpamClient,
  IpamRequest,
  IpamStatus,
  NodeReadiness,
  NodeSession,
  StoredEndpoint,
  WorkloadEndpointDoc,
} from '../commands/interfaces.js';
import { assignmentOf } from '../commands/ipam-ops.js';
import type { Log } from '../commands/context.js';
import { poolStatus, readinessStatus } from '../commands/status.js';
import type { DatastoreSettings, TabbyIpamConf } from '../spec/config.js';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { Connection, NodeFailure, NodeLostError } from './connection.js';
import type { NodeTransport } from './connection.js';
import {
  CNI_PROTOCOL,
  DEFAULT_NODE_SOCKET,
  datastoreWhere,
  ProtocolError,
  sameDatastore,
  ServiceCode,
} from './protocol.js';

export { NodeFailure, NodeLostError } from './connection.js';
export type { NodeTransport } from './connection.js';

export interface NodeClientOptions {
  /** How long connecting may take. [Default: 1000 ms] */
  readonly connectTimeoutMs?: number;
  /** How long the daemon may take to answer `cni.hello`. [Default: 2000 ms] */
  readonly helloTimeoutMs?: number;
  /** How long any other request may take (IPAM retries included). [Default: 30000 ms] */
  readonly requestTimeoutMs?: number;
}

const DEFAULTS = { connectTimeoutMs: 1000, helloTimeoutMs: 2000, requestTimeoutMs: 30_000 } as const;

const withPrefix = (ip: string): string => `${ip}/${ip.includes(':') ? 128 : 32}`;

/**
 * An error of a request to the daemon as the runtime should see it. The daemon's own
 * datastore and IPAM errors go through `map` (ipamError, endpointError), as they would in
 * this process; a lost daemon is 11, a protocol mismatch 100. `assigning`: the handle of an
 * assignment whose outcome a lost connection leaves unknown.
 */
function nodeError(
  e: unknown,
  what: string,
  map: (e: unknown, what: string) => CniError,
  assigning?: string,
): CniError {
  if (e instanceof CniError) return e;
  const unknown =
    assigning === undefined
      ? ''
      : `; it may have assigned addresses to handle ${assigning}: the runtime's DEL of this container releases them`;
  if (e instanceof NodeLostError)
    return new CniError(
      ErrorCode.TryAgainLater,
      `${what}: tabby-node stopped answering`,
      `${e.message}${e.sent ? unknown : ''}`,
      { cause: e },
    );
  if (e instanceof ProtocolError)
    return new CniError(
      ErrorCode.Internal,
      `${what}: tabby-node's answer was not understood`,
      `${e.message}${unknown}`,
      {
        cause: e,
      },
    );
  if (e instanceof NodeFailure && (e.code === ServiceCode.BadRequest || e.code === ServiceCode.Unsupported))
    return new CniError(ErrorCode.Internal, `${what}: tabby-node refused the request`, e.message, {
      cause: e,
    });
  return map(e, what);
}

/** Endpoint errors keep the datastore's code for endpointError; the daemon's own become CniErrors. */
const endpointFailure = (e: unknown, what: string): unknown =>
  e instanceof NodeFailure && e.code !== ServiceCode.BadRequest && e.code !== ServiceCode.Unsupported
    ? e
    : nodeError(e, what, endpointError);

/** Tabby's IPAM through the daemon: the same requests as DatastoreIpamClient makes in-process. */
export class SocketIpamClient implements IpamClient {
  constructor(
    private readonly c: NodeTransport,
    private readonly conf: TabbyIpamConf,
    private readonly timeoutMs: number,
    /** True when closing this client closes the connection (tabby-ipam). */
    private readonly ownsConnection: boolean,
  ) {}

  async allocate(req: IpamRequest): Promise<IpamAllocation> {
    const assignment = assignmentOf(req, this.conf);
    const what = `IPAM allocation for ${req.handle}`;
    try {
      let r;
      try {
        r = await this.c.request({ cmd: 'cni.assign', assignment }, this.timeoutMs);
      } catch (e) {
        // Nothing was assigned: the IPAM asks for the labels before it assigns.
        if (!(e instanceof NodeFailure && e.code === ServiceCode.NamespaceLabelsNeeded)) throw e;
        const labels = req.namespaceLabels === undefined ? {} : await req.namespaceLabels(e.pools);
        r = await this.c.request({ cmd: 'cni.assign', assignment, namespace: { labels } }, this.timeoutMs);
      }
      return { addresses: r.addresses.map(withPrefix) };
    } catch (e) {
      throw nodeError(e, what, ipamError, req.handle);
    }
  }

  async release(handle: string): Promise<void> {
    try {
      await this.c.request({ cmd: 'cni.release', handle }, this.timeoutMs);
    } catch (e) {
      throw nodeError(e, `IPAM release of ${handle}`, ipamError);
    }
  }

  async addresses(handle: string): Promise<readonly string[]> {
    try {
      return (await this.c.request({ cmd: 'cni.addresses', handle }, this.timeoutMs)).addresses.map(
        withPrefix,
      );
    } catch (e) {
      throw nodeError(e, `IPAM lookup of ${handle}`, ipamError);
    }
  }

  async listHandles(network: string): Promise<readonly string[]> {
    try {
      return (await this.c.request({ cmd: 'cni.handles', network }, this.timeoutMs)).handles;
    } catch (e) {
      throw nodeError(e, `listing IPAM handles of ${network}`, ipamError);
    }
  }

  /** The daemon ready, then room in the pools (asked together, answered in order). */
  async status(): Promise<IpamStatus> {
    const ready = this.c.request({ cmd: 'cni.ready' }, this.timeoutMs);
    const pools = this.c.request({ cmd: 'cni.pools' }, this.timeoutMs);
    pools.catch(() => undefined); // judged below, after readiness
    try {
      const r = readinessStatus(await ready, this.c.path);
      if (!r.ok) return r;
      return poolStatus((await pools).pools, this.conf);
    } catch (e) {
      if (e instanceof NodeFailure && e.code !== ServiceCode.BadRequest && e.code !== ServiceCode.Unsupported)
        return { ok: false, code: 50, msg: 'the datastore is unreachable', details: e.message };
      const err = nodeError(e, 'STATUS', ipamError);
      return { ok: false, code: 50, msg: err.msg, details: err.details };
    }
  }

  close(): Promise<void> {
    if (this.ownsConnection) this.c.close();
    return Promise.resolve();
  }
}

/** WorkloadEndpoints through the daemon: the same operations as DatastoreEndpoints. */
export class SocketEndpoints implements EndpointStore {
  constructor(
    private readonly c: NodeTransport,
    private readonly timeoutMs: number,
  ) {}

  async put(endpoint: WorkloadEndpointDoc): Promise<void> {
    try {
      await this.c.request({ cmd: 'cni.endpoint.put', endpoint }, this.timeoutMs);
    } catch (e) {
      throw endpointFailure(e, `writing WorkloadEndpoint ${endpoint.namespace}/${endpoint.name}`);
    }
  }

  async get(k: EndpointKey): Promise<WorkloadEndpointDoc | undefined> {
    const key = { namespace: k.namespace, name: k.name };
    try {
      return (await this.c.request({ cmd: 'cni.endpoint.get', key }, this.timeoutMs)).endpoint ?? undefined;
    } catch (e) {
      throw endpointFailure(e, `reading WorkloadEndpoint ${key.namespace}/${key.name}`);
    }
  }

  /** `k` may be a StoredEndpoint (GC): only its key is sent. */
  async delete(k: EndpointKey): Promise<'deleted' | 'absent'> {
    const key = { namespace: k.namespace, name: k.name };
    try {
      return (await this.c.request({ cmd: 'cni.endpoint.delete', key }, this.timeoutMs)).result;
    } catch (e) {
      throw endpointFailure(e, `deleting WorkloadEndpoint ${key.namespace}/${key.name}`);
    }
  }

  async list(node: string, network: string): Promise<readonly StoredEndpoint[]> {
    try {
      return (await this.c.request({ cmd: 'cni.endpoint.list', node, network }, this.timeoutMs)).endpoints;
    } catch (e) {
      throw endpointFailure(e, `listing WorkloadEndpoints of ${node}`);
    }
  }
}

class SocketSession implements NodeSession {
  readonly endpoints: SocketEndpoints;

  constructor(
    private readonly c: NodeTransport,
    private readonly timeoutMs: number,
    /** The daemon's node, as it said hello. */
    readonly node: string,
  ) {
    this.endpoints = new SocketEndpoints(c, timeoutMs);
  }

  get socket(): string {
    return this.c.path;
  }

  ipam(conf: TabbyIpamConf): IpamClient {
    return new SocketIpamClient(this.c, conf, this.timeoutMs, false);
  }

  /** An IpamClient that closes the session's connection when it is closed. */
  ownIpam(conf: TabbyIpamConf): IpamClient {
    return new SocketIpamClient(this.c, conf, this.timeoutMs, true);
  }

  async ready(): Promise<NodeReadiness> {
    try {
      const r = await this.c.request({ cmd: 'cni.ready' }, this.timeoutMs);
      return { ready: r.ready, reason: r.reason };
    } catch (e) {
      throw nodeError(
        e,
        'tabby-node readiness',
        (x, what) => new CniError(ErrorCode.PluginNotAvailable, what, errorText(x)),
      );
    }
  }

  close(): Promise<void> {
    this.c.close();
    return Promise.resolve();
  }
}

/** A session whose requests go through `transport` (the daemon's own, for an invocation run there). */
export function sessionOver(transport: NodeTransport, node: string, timeoutMs: number): NodeSession {
  return new SocketSession(transport, timeoutMs, node);
}

/**
 * A session with the node daemon at `socket` (default DEFAULT_NODE_SOCKET), or undefined
 * when it does not answer as the CNI service, or works on another datastore than the
 * config's `datastore` names (the plugin then does the work itself, on the datastore its
 * config names). The reason for falling back is logged: at debug level when there is no
 * socket at all (no daemon on this node), as a warning otherwise.
 */
export async function openNodeSession(
  socket: string | undefined,
  log: Log,
  opts: NodeClientOptions = {},
  datastore?: DatastoreSettings,
): Promise<NodeSession | undefined> {
  const path = socket ?? DEFAULT_NODE_SOCKET;
  const o = { ...DEFAULTS, ...opts };
  const fallback = (level: 'debug' | 'warn', why: string): undefined => {
    log(level, `${why}: the datastore work is done in this process`);
    return undefined;
  };
  let c: Connection;
  try {
    c = await Connection.connect(path, o.connectTimeoutMs);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return code === 'ENOENT'
      ? fallback('debug', `no tabby-node socket at ${path}`)
      : fallback('warn', `tabby-node's socket ${path} does not answer (${errorText(e)})`);
  }
  let hello;
  try {
    hello = await c.request({ cmd: 'cni.hello', protocol: CNI_PROTOCOL }, o.helloTimeoutMs);
  } catch (e) {
    c.close();
    return fallback('warn', `tabby-node at ${path} does not serve CNI requests (${errorText(e)})`);
  }
  if (hello.protocol !== CNI_PROTOCOL) {
    c.close();
    return fallback(
      'warn',
      `tabby-node at ${path} speaks CNI protocol ${hello.protocol}, not ${CNI_PROTOCOL}`,
    );
  }
  if (datastore !== undefined && hello.datastore !== null && !sameDatastore(hello.datastore, datastore)) {
    c.close();
    return fallback(
      'warn',
      `tabby-node at ${path} works on ${JSON.stringify(hello.datastore)}, not the config's datastore ` +
        JSON.stringify(datastoreWhere(datastore)),
    );
  }
  log('debug', `tabby-node (node ${hello.node}) at ${path} does the datastore work`);
  return new SocketSession(c, o.requestTimeoutMs, hello.node);
}

/** tabby-ipam's IpamClient through the daemon (closing it closes the connection), or undefined. */
export async function openNodeIpam(
  socket: string | undefined,
  conf: TabbyIpamConf,
  log: Log,
  opts: NodeClientOptions = {},
  datastore?: DatastoreSettings,
): Promise<IpamClient | undefined> {
  const s = await openNodeSession(socket, log, opts, datastore);
  return s instanceof SocketSession ? s.ownIpam(conf) : undefined;
}
