// The daemon's view (learned best paths, this node's BGP configuration, the datastore snapshot)
// as felix-lite's DataplaneInputs: local endpoints, affine blocks, pools, remote VXLAN
// endpoints. One place, used by the real dataplane and by the demo's "would program" listing.
import type {
  DataplaneInputs,
  EndpointInput,
  HostInterfaceInput,
  PoolInput,
  RemoteVtep,
} from '@tabby/felix-lite';
import { vxlanMacForNode } from '@tabby/ipip';
import { encapModeOf } from '../bgpconfig/compute.js';
import type { DataplaneView } from '../daemon/node-daemon.js';

export function dataplaneInputs(
  view: DataplaneView,
  hostInterfaces: readonly HostInterfaceInput[],
): DataplaneInputs {
  const node = view.config.node;
  const snap = view.snapshot;
  const endpoints: EndpointInput[] = snap.workloadEndpoints
    .filter((w) => w.spec.node === node && w.spec.interfaceName !== undefined && w.spec.interfaceName !== '')
    .map((w) => ({
      interfaceName: w.spec.interfaceName!,
      addresses: w.spec.ipNetworks ?? [],
      name: `${w.metadata.namespace ?? ''}/${w.metadata.name}`,
      ...(w.spec.mac !== undefined ? { mac: w.spec.mac } : {}),
    }));
  const pools: PoolInput[] = snap.ipPools.map((p) => ({
    cidr: p.spec.cidr,
    ipipMode: encapModeOf(p.spec.ipipMode),
    vxlanMode: encapModeOf(p.spec.vxlanMode),
    ...(p.spec.natOutgoing !== undefined ? { natOutgoing: p.spec.natOutgoing } : {}),
    ...(p.spec.disabled !== undefined ? { disabled: p.spec.disabled } : {}),
  }));
  const vteps: RemoteVtep[] = [];
  for (const n of snap.nodes) {
    if (n.metadata.name === node) continue;
    const addr = n.spec.bgp?.ipv4Address?.split('/')[0];
    if (addr !== undefined && n.spec.ipv4VXLANTunnelAddr !== undefined)
      vteps.push({
        nodeAddress: addr,
        tunnelAddress: n.spec.ipv4VXLANTunnelAddr,
        mac: n.spec.vxlanTunnelMACAddr ?? vxlanMacForNode(n.metadata.name, 4),
      });
    const addr6 = n.spec.bgp?.ipv6Address?.split('/')[0];
    if (addr6 !== undefined && n.spec.ipv6VXLANTunnelAddr !== undefined)
      vteps.push({
        nodeAddress: addr6,
        tunnelAddress: n.spec.ipv6VXLANTunnelAddr,
        mac: n.spec.vxlanTunnelMACAddrV6 ?? vxlanMacForNode(n.metadata.name, 6),
      });
  }
  return {
    paths: [...view.paths].map(([prefix, nextHops]) => ({ prefix, nextHops })),
    endpoints,
    affineBlocks: [...view.config.ipv4.exports.blocks, ...view.config.ipv6.exports.blocks].map((b) => b.cidr),
    pools,
    hostInterfaces,
    vteps,
  };
}
