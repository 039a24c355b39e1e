// STATUS (SPEC.md §2, spec 1.1.0): can an ADD succeed now? Tabby's IPAM answers (datastore
// reachable, a pool with free addresses; through the node daemon, the daemon ready too); a
// delegated IPAM plugin is asked in turn.
import type { TabbyIpamConf } from '../spec/config.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import type { Ctx, Ipam } from './context.js';
import { toCniError } from './errors.js';
import type { IpamStatus, NodeReadiness, NodeSession, PoolRoom } from './interfaces.js';

/**
 * Whether the pools leave room for an ADD with this config: for each family it assigns, an
 * enabled pool (one of `ipv4_pools` / `ipv6_pools` when set) with a free address.
 */
export function poolStatus(pools: readonly PoolRoom[], conf: TabbyIpamConf): IpamStatus {
  const families = [...(conf.assignIpv4 ? [4] : []), ...(conf.assignIpv6 ? [6] : [])];
  for (const f of families) {
    const wanted = f === 4 ? conf.ipv4Pools : conf.ipv6Pools;
    const usable = pools.filter(
      (p) =>
        !p.disabled &&
        (p.cidr.includes(':') ? 6 : 4) === f &&
        (wanted.length === 0 || wanted.includes(p.cidr)),
    );
    if (usable.length === 0)
      return { ok: false, code: 50, msg: `no enabled IPv${f} pool`, details: 'ADD cannot get an address' };
    if (usable.every((p) => p.free === 0))
      return {
        ok: false,
        code: 50,
        msg: `IPv${f} pools exhausted`,
        details: usable.map((p) => `${p.name} (${p.cidr}): ${p.inUse} of ${p.capacity} in use`).join('; '),
      };
  }
  return { ok: true };
}

/** The node daemon's readiness as STATUS reports it: 50 naming the daemon's reason. */
export function readinessStatus(r: NodeReadiness, socket: string): IpamStatus {
  return r.ready
    ? { ok: true }
    : { ok: false, code: 50, msg: `tabby-node is not ready: ${r.reason}`, details: `asked at ${socket}` };
}

/**
 * `node`: the node daemon's session, when it answers. With Tabby's IPAM its client asks the
 * daemon's readiness itself (../node-api/client.ts, also for tabby-ipam); otherwise it is
 * asked here, before the delegated IPAM.
 */
export async function status(ctx: Ctx, ipam: Ipam | undefined, node?: NodeSession): Promise<void> {
  const fail = (s: IpamStatus): void => {
    if (!s.ok) throw new CniError(s.code, s.msg, s.details);
  };
  if (node !== undefined && ipam?.kind !== 'tabby') {
    let r;
    try {
      r = await node.ready();
    } catch (e) {
      throw toCniError(e, ErrorCode.PluginNotAvailable, 'tabby-node readiness');
    }
    fail(readinessStatus(r, node.socket));
  }
  if (ipam === undefined) return;
  if (ipam.kind === 'delegated') {
    await ipam.exec(ipam.type, 'STATUS', JSON.stringify(ctx.conf.raw));
    return;
  }
  let s;
  try {
    s = await ipam.client.status();
  } catch (e) {
    throw toCniError(e, ErrorCode.PluginNotAvailable, 'IPAM status');
  }
  fail(s);
}
