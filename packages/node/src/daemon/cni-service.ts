// The CNI service on tabby-node's control socket: the IPAM and WorkloadEndpoint work of the
// CNI plugin, done here on the daemon's open datastore instead of in every plugin process
// (which would start Node, load the datastore and parse the IPAM blocks each time). The
// requests and answers are @tabby/cni's node protocol; every operation is the plugin's own
// in-process operation (@tabby/cni/datastore-ops), so the two ways give the same results and
// the same error codes. The plugin falls back to its own way when the daemon does not answer.
//
// IPAM writes (assign, release) run one at a time: every ADD on a node claims from the node's
// affine block, so concurrent writes would only lose compare-and-swap races to each other
// and retry. Reads and WorkloadEndpoint writes (one object per pod) run as they come.
import type { Datastore, Ipam } from '@tabby/datastore';
import type { DatastoreConfig } from '@tabby/datastore';
import type { CniAnswers, CniCommandName, CniFailure, CniReply, CniRequest } from '@tabby/cni/node-protocol';
import {
  CNI_PROTOCOL,
  datastoreWhere,
  parseCniRequest,
  ProtocolError,
  ServiceCode,
} from '@tabby/cni/node-protocol';
import {
  assign,
  DatastoreEndpoints,
  handleAddresses,
  networkHandles,
  poolRooms,
  release,
} from '@tabby/cni/datastore-ops';
import type { Dataplane as CniDataplane } from '@tabby/cni';
import { serveRun } from '@tabby/cni/serve-run';

export interface CniServiceOptions {
  /** The daemon's datastore (WorkloadEndpoints). */
  readonly datastore: Datastore;
  /** IPAM on the same backend. */
  readonly ipam: Ipam;
  /**
   * Where that datastore is, told in hello so that a plugin configured for another one does
   * the work itself instead (absent: not told, e.g. an in-memory datastore).
   */
  readonly config?: DatastoreConfig;
  readonly nodeName: string;
  /**
   * Whole ADD, DEL and CHECK invocations (`cni.run`) run here with this kernel dataplane
   * (loaded on first use; as root only); absent: declined, the plugin runs them itself.
   */
  readonly invocations?: {
    readonly dataplane: () => Promise<CniDataplane>;
    /** The pod MTU file this daemon writes. */
    readonly mtuFile?: string;
  };
  /** NodeDaemon.ready(): Calico's readiness. */
  readonly ready: () => { readonly ready: boolean; readonly reason: string };
  /** One structured line per assignment and release (fields for the log's JSON). */
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ) => void;
}

/** Thrown by the namespace-labels callback: the IPAM asks before it assigns anything. */
class LabelsNeeded extends Error {
  constructor(readonly pools: readonly string[]) {
    super(
      `IPPool${pools.length > 1 ? 's' : ''} ${pools.join(', ')} select${pools.length > 1 ? '' : 's'} ` +
        "namespaces: ask again with the pod namespace's labels",
    );
  }
}

const codeOf = (e: unknown): string => {
  const c = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  return typeof c === 'string' && c !== '' ? c : ServiceCode.Internal;
};

const failure = (code: string, error: string, pools?: readonly string[]): CniFailure => ({
  ok: false,
  error,
  code,
  ...(pools === undefined ? {} : { pools }),
});

export class CniService {
  private readonly endpoints: DatastoreEndpoints;
  /** The IPAM writes, one after another. */
  private ipamWrites: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: CniServiceOptions) {
    this.endpoints = new DatastoreEndpoints(opts.datastore);
  }

  /**
   * The answer to one decoded request line: a CNI request (`cmd` starting `cni.`) is checked
   * and carried out; a malformed one is answered BadRequest naming the field.
   */
  async answer(message: unknown): Promise<CniReply> {
    let req: CniRequest;
    try {
      req = parseCniRequest(message);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      return failure(ServiceCode.BadRequest, `malformed CNI request: ${e.message}`);
    }
    try {
      return { ok: true, ...(await this.run(req)) };
    } catch (e) {
      if (e instanceof LabelsNeeded) return failure(ServiceCode.NamespaceLabelsNeeded, e.message, e.pools);
      const code = codeOf(e);
      const error = e instanceof Error ? e.message : String(e);
      if (code === ServiceCode.Internal)
        this.opts.log?.(
          'error',
          `CNI ${req.cmd} failed: ${e instanceof Error ? (e.stack ?? error) : error}`,
          {
            cmd: req.cmd,
          },
        );
      return failure(code, error);
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.ipamWrites.then(f, f);
    this.ipamWrites = r.catch(() => undefined);
    return r;
  }

  private async run(req: CniRequest): Promise<CniAnswers[CniCommandName]> {
    const { ipam } = this.opts;
    switch (req.cmd) {
      case 'cni.hello':
        if (req.protocol !== CNI_PROTOCOL)
          throw Object.assign(
            new Error(`this tabby-node speaks CNI protocol ${CNI_PROTOCOL}, not ${req.protocol}`),
            { code: ServiceCode.Unsupported },
          );
        return {
          protocol: CNI_PROTOCOL,
          node: this.opts.nodeName,
          datastore: this.opts.config === undefined ? null : datastoreWhere(this.opts.config),
        };
      case 'cni.assign': {
        const { assignment, namespace } = req;
        const addresses = await this.serial(() =>
          assign(ipam, assignment, namespace ?? ((pools) => Promise.reject(new LabelsNeeded(pools)))),
        );
        this.opts.log?.('info', 'CNI: addresses assigned', {
          handle: assignment.handle,
          node: assignment.node,
          addresses,
        });
        return { addresses };
      }
      case 'cni.release':
        await this.serial(() => release(ipam, req.handle));
        this.opts.log?.('info', 'CNI: handle released', { handle: req.handle });
        return {};
      case 'cni.addresses':
        return { addresses: await handleAddresses(ipam, req.handle) };
      case 'cni.handles':
        return { handles: await networkHandles(ipam.backend, req.network) };
      case 'cni.endpoint.put':
        await this.endpoints.put(req.endpoint);
        return {};
      case 'cni.endpoint.get':
        return { endpoint: (await this.endpoints.get(req.key)) ?? null };
      case 'cni.endpoint.delete':
        return { result: await this.endpoints.delete(req.key) };
      case 'cni.endpoint.list':
        return { endpoints: await this.endpoints.list(req.node, req.network) };
      case 'cni.pools':
        return { pools: await poolRooms(ipam) };
      case 'cni.ready': {
        const r = this.opts.ready();
        return { ready: r.ready, reason: r.reason };
      }
      case 'cni.run': {
        const inv = this.opts.invocations;
        if (inv === undefined)
          throw Object.assign(new Error('this tabby-node runs no CNI invocations'), {
            code: ServiceCode.NotHere,
          });
        const t0 = performance.now();
        const r = await serveRun(req, {
          answer: (sub) => this.answer(sub),
          node: this.opts.nodeName,
          datastore: this.opts.config === undefined ? null : datastoreWhere(this.opts.config),
          dataplane: inv.dataplane,
          ...(inv.mtuFile !== undefined ? { mtuFile: inv.mtuFile } : {}),
        });
        this.opts.log?.('info', `CNI ${req.env['CNI_COMMAND'] ?? ''} run`, {
          container: req.env['CNI_CONTAINERID'],
          exitCode: r.exitCode,
          ms: Math.round((performance.now() - t0) * 10) / 10,
        });
        return r;
      }
    }
  }
}
