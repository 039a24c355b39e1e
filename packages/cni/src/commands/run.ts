// The `tabby` CNI plugin: the dispatcher with the handlers wired to a Dataplane and an IPAM
// (Tabby's own in-process, or a delegated plugin from CNI_PATH).
import { DEFAULT_MTU_FILE } from '@tabby/ipip/mtu-file';
import type { NetConf } from '../spec/config.js';
import { isDelegated } from '../spec/config.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import { add } from './add.js';
import { check } from './check.js';
import type { AttachmentCtx, Ctx, Ipam, Log } from './context.js';
import { del } from './del.js';
import { processExec } from './exec.js';
import { gc } from './gc.js';
import type { Dataplane, DatastoreSession, NamespaceReader, NodeSession, PluginExec } from './interfaces.js';
import type { RunIo } from './skel.js';
import { dispatch } from './skel.js';
import { status } from './status.js';

export interface PluginDeps {
  /** The kernel side; loaded only for ADD, DEL and CHECK. */
  dataplane(): Promise<Dataplane>;
  /**
   * The datastore the config (or environment) names, opened once per invocation: Tabby's
   * IPAM and the WorkloadEndpoints share its connection.
   */
  datastore(conf: NetConf, log: Log): Promise<DatastoreSession>;
  /**
   * The node daemon's session when it answers (the config's `node_socket`); undefined: it
   * does not, and `datastore` is opened instead. Absent: the work is never delegated.
   */
  node?(conf: NetConf, log: Log): Promise<NodeSession | undefined>;
  /** This node's name when the config has no `nodename`: /var/lib/calico/nodename, else the hostname. */
  nodename(): Promise<string>;
  /** The pod MTU file the node daemon writes. [Default: /var/lib/tabby/mtu] */
  readonly mtuFile?: string;
  /** A Namespace's labels from the Kubernetes API, for IPPool namespaceSelector. */
  readNamespace: NamespaceReader;
  /** Delegated plugins; default: run from CNI_PATH. */
  exec?(io: RunIo, path: readonly string[]): PluginExec;
  now?(): Date;
}

/**
 * Runs f with the IPAM the config names and, when Tabby's IPAM or `endpoints` needs it, one
 * datastore session, closed afterwards whatever f did: the node daemon's when it answers,
 * else the datastore opened in this process. Without that need (STATUS with a delegated
 * IPAM), only the daemon's, for its readiness.
 */
async function withDatastore<T>(
  ctx: Ctx,
  io: RunIo,
  deps: PluginDeps,
  endpoints: boolean,
  f: (ipam: Ipam | undefined, session: DatastoreSession | NodeSession | undefined) => Promise<T>,
): Promise<T> {
  const c = ctx.conf.ipam;
  const tabby = c !== undefined && !isDelegated(c) ? c : undefined;
  const node = await deps.node?.(ctx.conf, ctx.log);
  const session =
    node ?? (tabby !== undefined || endpoints ? await deps.datastore(ctx.conf, ctx.log) : undefined);
  try {
    let ipam: Ipam | undefined;
    if (c === undefined) ipam = undefined;
    else if (isDelegated(c)) {
      const exec =
        deps.exec?.(io, ctx.env.path) ??
        processExec({ env: io.env, path: ctx.env.path, stderr: (s) => io.stderr.write(s) });
      ipam = { kind: 'delegated', type: c.type, exec };
    } else ipam = { kind: 'tabby', client: session!.ipam(c) };
    return await f(ipam, session);
  } finally {
    await session?.close().catch((e: unknown) => ctx.log('warn', `closing the datastore: ${String(e)}`));
  }
}

const nodeOf = async (ctx: Ctx, deps: PluginDeps): Promise<string> =>
  ctx.conf.nodename ?? (await deps.nodename());

async function attachment<T>(
  ctx: Ctx,
  io: RunIo,
  deps: PluginDeps,
  f: (a: AttachmentCtx) => Promise<T>,
): Promise<T> {
  if (ctx.conf.ipam === undefined && ctx.env.command === 'ADD')
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: ipam',
      'ipam (with a type) is required for ADD',
    );
  const dataplane = await deps.dataplane();
  const node = await nodeOf(ctx, deps);
  // ADD writes the endpoint, CHECK compares it, DEL deletes it: all three need the datastore.
  return withDatastore(ctx, io, deps, true, (ipam, session) =>
    f({
      ...ctx,
      dataplane,
      node,
      ipam,
      readNamespace: deps.readNamespace,
      endpoints: session!.endpoints,
      mtuFile: deps.mtuFile ?? DEFAULT_MTU_FILE,
    }),
  );
}

/** The `tabby` plugin. */
export function run(io: RunIo, deps: PluginDeps): Promise<number> {
  return dispatch(
    io,
    'tabby',
    {
      ipamResult: false,
      add: (ctx) => attachment(ctx, io, deps, add),
      del: (ctx) => attachment(ctx, io, deps, del),
      check: (ctx) => attachment(ctx, io, deps, check),
      gc: async (ctx) => {
        const node = await nodeOf(ctx, deps);
        await withDatastore(ctx, io, deps, true, (ipam, session) =>
          gc(ctx, ipam, session === undefined ? undefined : { store: session.endpoints, node }),
        );
      },
      status: (ctx) =>
        withDatastore(ctx, io, deps, false, (ipam, session) =>
          status(ctx, ipam, session !== undefined && 'ready' in session ? session : undefined),
        ),
    },
    () => deps.now?.() ?? new Date(),
  );
}
