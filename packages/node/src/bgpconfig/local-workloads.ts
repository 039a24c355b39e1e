// Which local workloads peer over BGP, and with which BGPPeer: Felix's ActiveBGPPeerCalculator
// (felix/calc/active_bpgpeer_calculator.go, v3.31.7). A BGPPeer with a localWorkloadSelector
// is active on this node when its node / nodeSelector selects the node (neither: every node);
// a workload endpoint on this node it selects peers with it. When several active BGPPeers
// select one workload, the first by name wins. Calico's Felix writes the result as endpoint
// status files that confd reads; here it is a value.
import type { BGPPeer, Node, WorkloadEndpoint } from '@tabby/datastore';
import { formatIp, matches, parseIp, parseSelector } from '@tabby/datastore';
import type { LocalBgpPeerEndpoint } from './inputs.js';

function selects(text: string, labels: Readonly<Record<string, string>>): boolean {
  try {
    return matches(parseSelector(text), labels);
  } catch {
    return false; // Felix ignores a BGPPeer whose selector does not parse (computeBgpConfig warns)
  }
}

export function activeLocalBgpPeers(
  peers: readonly BGPPeer[],
  workloads: readonly WorkloadEndpoint[],
  node: Node | undefined,
  nodeName: string,
): LocalBgpPeerEndpoint[] {
  const nodeLabels = node?.metadata.labels ?? {};
  const active = peers
    .filter((p) => p.spec.localWorkloadSelector !== undefined && p.spec.localWorkloadSelector !== '')
    .filter((p) =>
      p.spec.node !== undefined && p.spec.node !== ''
        ? p.spec.node === nodeName
        : selects(p.spec.nodeSelector ?? 'all()', nodeLabels),
    )
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const out: LocalBgpPeerEndpoint[] = [];
  for (const w of workloads) {
    if (w.spec.node !== nodeName) continue;
    const labels = { ...w.metadata.labels, 'projectcalico.org/namespace': w.metadata.namespace ?? '' };
    const peer = active.find((p) => selects(p.spec.localWorkloadSelector!, labels));
    if (peer === undefined) continue;
    const first = (fam: 4 | 6): string | undefined => {
      const c = (w.spec.ipNetworks ?? []).find((n) => n.includes(':') === (fam === 6));
      const a = c === undefined ? undefined : parseIp(c.split('/')[0]!);
      return a === undefined ? undefined : formatIp(a);
    };
    const ipv4 = first(4);
    const ipv6 = first(6);
    if (ipv4 === undefined && ipv6 === undefined) continue;
    out.push({
      name: `${w.metadata.namespace ?? ''}/${w.metadata.name}`,
      bgpPeerName: peer.metadata.name,
      ...(ipv4 !== undefined ? { ipv4 } : {}),
      ...(ipv6 !== undefined ? { ipv6 } : {}),
    });
  }
  return out;
}
