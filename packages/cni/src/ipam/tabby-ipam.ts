// The `tabby-ipam` plugin (type tabby-ipam), for a main plugin that delegates IPAM (SPEC.md
// §4): ADD prints the abbreviated result (ips only), DEL releases the handle
// `<network>.<containerID>`, CHECK compares prevResult's addresses with the reservation, GC
// releases this network's handles not in valid-attachments, STATUS reports pool room.
import type { IpamCtx, Log } from '../commands/context.js';
import type { IpamClient, NamespaceReader } from '../commands/interfaces.js';
import { ipamAllocate, ipamCheck, ipamRelease, fullPrefix } from '../commands/ipam-ops.js';
import { gc } from '../commands/gc.js';
import { status } from '../commands/status.js';
import type { RunIo } from '../commands/skel.js';
import { dispatch } from '../commands/skel.js';
import type { Ctx } from '../commands/context.js';
import type { NetConf, TabbyIpamConf } from '../spec/config.js';
import { isDelegated, TABBY_IPAM } from '../spec/config.js';
import { CniError, ErrorCode } from '../spec/errors.js';

export interface IpamPluginDeps {
  tabbyIpam(conf: NetConf, ipam: TabbyIpamConf, log: Log): Promise<IpamClient>;
  nodename(): Promise<string>;
  /** A Namespace's labels from the Kubernetes API, for IPPool namespaceSelector. */
  readNamespace: NamespaceReader;
  now?(): Date;
}

function ipamConf(conf: NetConf): TabbyIpamConf {
  const i = conf.ipam;
  if (i === undefined || isDelegated(i))
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: ipam.type',
      `tabby-ipam needs ipam.type ${TABBY_IPAM}, not ${JSON.stringify(i?.type ?? null)}`,
    );
  return i;
}

async function withClient<T>(ctx: Ctx, deps: IpamPluginDeps, f: (c: IpamCtx) => Promise<T>): Promise<T> {
  const client = await deps.tabbyIpam(ctx.conf, ipamConf(ctx.conf), ctx.log);
  try {
    const node = ctx.conf.nodename ?? (await deps.nodename());
    return await f({ ...ctx, node, ipam: { kind: 'tabby', client }, readNamespace: deps.readNamespace });
  } finally {
    await client.close().catch((e: unknown) => ctx.log('warn', `closing the datastore: ${String(e)}`));
  }
}

export function runIpam(io: RunIo, deps: IpamPluginDeps): Promise<number> {
  return dispatch(
    io,
    'tabby-ipam',
    {
      ipamResult: true,
      add: (ctx) =>
        withClient(ctx, deps, async (c) => ({
          interfaces: [],
          ips: (await ipamAllocate(c)).map((address) => ({ address })),
          routes: [],
          dns: ctx.conf.dns,
        })),
      del: (ctx) => withClient(ctx, deps, ipamRelease),
      check: (ctx) =>
        withClient(ctx, deps, async (c) => {
          const prev = ctx.conf.prevResult;
          if (prev === undefined)
            throw new CniError(
              ErrorCode.InvalidConfig,
              'invalid network config: prevResult',
              'CHECK needs the prevResult of ADD',
            );
          const problems = await ipamCheck(
            c,
            prev.ips.map((i) => fullPrefix(i.address)),
          );
          if (problems.length > 0)
            throw new CniError(ErrorCode.CheckFailed, `CHECK failed: ${problems[0]}`, problems.join('; '));
        }),
      // tabby-ipam has no endpoints: the tabby plugin that runs it (or another) owns those.
      gc: (ctx) => withClient(ctx, deps, async (c) => void (await gc(ctx, c.ipam, undefined))),
      status: (ctx) => withClient(ctx, deps, (c) => status(ctx, c.ipam)),
    },
    () => deps.now?.() ?? new Date(),
  );
}
