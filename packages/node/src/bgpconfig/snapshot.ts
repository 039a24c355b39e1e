// A BgpSnapshot from a datastore (every kind BGP configuration reads), or from resources in
// hand (a manifest, a test scenario).
import type { AnyKindResource, Datastore } from '@tabby/datastore';
import type { BgpSnapshot, KubernetesObjects } from './inputs.js';
import { EMPTY_KUBERNETES } from './inputs.js';

export async function loadSnapshot(
  ds: Datastore,
  kubernetes: KubernetesObjects = EMPTY_KUBERNETES,
): Promise<BgpSnapshot> {
  const [bgpConfigurations, bgpPeers, bgpFilters, nodes, ipPools, blockAffinities, workloadEndpoints] =
    await Promise.all([
      ds.list('BGPConfiguration'),
      ds.list('BGPPeer'),
      ds.list('BGPFilter'),
      ds.list('Node'),
      ds.list('IPPool'),
      ds.list('BlockAffinity'),
      ds.list('WorkloadEndpoint'),
    ]);
  return {
    bgpConfigurations: bgpConfigurations.items,
    bgpPeers: bgpPeers.items,
    bgpFilters: bgpFilters.items,
    nodes: nodes.items,
    ipPools: ipPools.items,
    blockAffinities: blockAffinities.items,
    workloadEndpoints: workloadEndpoints.items,
    kubernetes,
  };
}

/** Sorts parsed resources into a snapshot; kinds BGP configuration does not read are ignored. */
export function snapshotOf(
  resources: readonly AnyKindResource[],
  kubernetes: KubernetesObjects = EMPTY_KUBERNETES,
): BgpSnapshot {
  const s = {
    bgpConfigurations: [] as BgpSnapshot['bgpConfigurations'][number][],
    bgpPeers: [] as BgpSnapshot['bgpPeers'][number][],
    bgpFilters: [] as BgpSnapshot['bgpFilters'][number][],
    nodes: [] as BgpSnapshot['nodes'][number][],
    ipPools: [] as BgpSnapshot['ipPools'][number][],
    blockAffinities: [] as BgpSnapshot['blockAffinities'][number][],
    workloadEndpoints: [] as BgpSnapshot['workloadEndpoints'][number][],
  };
  for (const r of resources) {
    switch (r.kind) {
      case 'BGPConfiguration':
        s.bgpConfigurations.push(r);
        break;
      case 'BGPPeer':
        s.bgpPeers.push(r);
        break;
      case 'BGPFilter':
        s.bgpFilters.push(r);
        break;
      case 'Node':
        s.nodes.push(r);
        break;
      case 'IPPool':
        s.ipPools.push(r);
        break;
      case 'BlockAffinity':
        s.blockAffinities.push(r);
        break;
      case 'WorkloadEndpoint':
        s.workloadEndpoints.push(r);
        break;
      default:
        break;
    }
  }
  return { ...s, kubernetes };
}
