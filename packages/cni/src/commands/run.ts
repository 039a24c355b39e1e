// The `tabby` CNI plugin: the dispatcher with the handlers wired to a Dataplane and an IPAM
// (Tabby's own in-process, or a delegated plugin from CNI_PATH).
import type { NetConf } from '../spec/config.js';
import { isDelegated } from '../spec/config.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import { add } from './add.js';
import { check } from './check.js';
import type { AttachmentCtx, Ctx, Ipam, Log } from './context.js';
import { del } from './del.js';
import { processExec } from './exec.js';
import { gc } from './gc.js';
import type { Dataplane, IpamClient, PluginExec } from './interfaces.js';
import type { RunIo } from './skel.js';
import { dispatch } from './skel.js';
import { status } from './status.js';

export interface PluginDeps {
  /** The kernel side; loaded only for ADD, DEL and CHECK. */
  dataplane(): Promise<Dataplane>;
  /** Tabby's IPAM over the datastore the config (or environment) names. */
  tabbyIpam(conf: NetConf, log: Log): Promise<IpamClient>;
  /** This node's name when the config has no `nodename`: /etc/tabby/nodename, else the hostname. */
  nodename(): Promise<string>;
  /** Delegated plugins; default: run from CNI_PATH. */
  exec?(io: RunIo, path: readonly string[]): PluginExec;
  now?(): Date;
}

async function withIpam<T>(
  ctx: Ctx,
  io: RunIo,
  deps: PluginDeps,
  f: (ipam: Ipam | undefined) => Promise<T>,
): Promise<T> {
  const c = ctx.conf.ipam;
  if (c === undefined) return f(undefined);
  if (isDelegated(c)) {
    const exec =
      deps.exec?.(io, ctx.env.path) ??
      processExec({ env: io.env, path: ctx.env.path, stderr: (s) => io.stderr.write(s) });
    return f({ kind: 'delegated', type: c.type, exec });
  }
  const client = await deps.tabbyIpam(ctx.conf, ctx.log);
  try {
    return await f({ kind: 'tabby', client });
  } finally {
    await client.close().catch((e: unknown) => ctx.log('warn', `closing the datastore: ${String(e)}`));
  }
}

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
  const node = ctx.conf.nodename ?? (await deps.nodename());
  return withIpam(ctx, io, deps, (ipam) =>
    f({
      ...ctx,
      dataplane,
      node,
      ipam,
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
      gc: (ctx) => withIpam(ctx, io, deps, async (ipam) => void (await gc(ctx, ipam))),
      status: (ctx) => withIpam(ctx, io, deps, (ipam) => status(ctx, ipam)),
    },
    () => deps.now?.() ?? new Date(),
  );
}
