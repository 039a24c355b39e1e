// Pod addresses this node must originate itself: a pod whose address came from another node's
// block (IPAM borrowing, when this node's blocks are full) is reached through this node, but
// the block's aggregate leads to the other node. Calico's BIRD exports them because it learns
// Felix's /32 route to the pod from the kernel; Tabby originates them from the node's
// WorkloadEndpoints (docs/migrating-from-calico.md).
import type { WorkloadEndpoint } from '@tabby/datastore';
import { cidrContainsIp, formatIp, parseCidr, parseIp } from '@tabby/datastore';
import type { BgpConfig } from '../bgpconfig/model.js';

export function borrowedAddresses(cfg: BgpConfig, workloads: readonly WorkloadEndpoint[]): string[] {
  const out = new Set<string>();
  for (const fc of [cfg.ipv4, cfg.ipv6]) {
    if (fc.nodeAddress === undefined) continue;
    const blocks = fc.exports.blocks.map((b) => parseCidr(b.cidr)!);
    const pools = fc.exports.pools.map((p) => parseCidr(p.cidr)!);
    for (const w of workloads) {
      if (w.spec.node !== cfg.node) continue;
      for (const net of w.spec.ipNetworks ?? []) {
        const a = parseIp(net.split('/')[0]!);
        if (a === undefined || a.family !== fc.family) continue;
        if (blocks.some((b) => cidrContainsIp(b, a))) continue; // covered by our aggregate
        if (!pools.some((p) => cidrContainsIp(p, a))) continue; // not a pool address: not ours to route
        out.add(`${formatIp(a)}/${a.family === 4 ? 32 : 128}`);
      }
    }
  }
  return [...out].sort();
}
