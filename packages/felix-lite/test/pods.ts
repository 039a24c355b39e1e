// Pods for the kernel tests, wired as the CNI plugin wires them (Calico's DoNetworking): a
// veth whose host end (cali…, MAC ee:ee:ee:ee:ee:ee, duplicate address detection off) stays
// in the node and whose other end becomes the pod's eth0 with /32 and /128 addresses,
// `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1`, and for IPv6 `default via
// fe80::ecee:eeff:feee:eeee` (the host end's link-local address).
import { execFileSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { IFA_F_NODAD, openNetns, RtnlClient, writeSysctl } from '@tabby/netlink';
import type { TestNetns } from './netns.js';

const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
const HOST_LINK_LOCAL6 = 'fe80::ecee:eeff:feee:eeee';

/** Wires a pod into a node; returns the MAC of the pod's eth0. */
export async function makePod(
  node: TestNetns,
  pod: TestNetns,
  cali: string,
  addresses: readonly string[],
): Promise<string> {
  const c = RtnlClient.open({ netns: node.path });
  const fd = openNetns(pod.path);
  try {
    await c.createLink({
      kind: 'veth',
      name: cali,
      address: HOST_VETH_MAC,
      peer: { name: 'tfleth0', netnsFd: fd },
    });
    // the host end's link-local address (the pods' IPv6 gateway) usable at once
    writeSysctl(`net/ipv6/conf/${cali}/accept_dad`, '0', node.path);
    await c.setLink(cali, { up: true });
  } finally {
    closeSync(fd);
    c.close();
  }
  const p = RtnlClient.open({ netns: pod.path });
  try {
    const eth0 = await p.getLink('tfleth0');
    await p.setLink(eth0.index, { name: 'eth0' });
    writeSysctl('net/ipv6/conf/eth0/accept_dad', '0', pod.path);
    await p.setLink(eth0.index, { up: true });
    for (const a of addresses) {
      const v6 = a.includes(':');
      await p.addAddress({
        family: v6 ? 6 : 4,
        index: eth0.index,
        address: a,
        prefixLen: v6 ? 128 : 32,
        ...(v6 ? { flags: IFA_F_NODAD } : {}),
      });
    }
    if (addresses.some((a) => !a.includes(':'))) {
      await p.addRoute({
        family: 4,
        dst: '169.254.1.1',
        dstLen: 32,
        scope: 253,
        nexthops: [{ oif: eth0.index }],
      });
      await p.addRoute({
        family: 4,
        dst: '0.0.0.0',
        dstLen: 0,
        nexthops: [{ oif: eth0.index, gateway: '169.254.1.1' }],
      });
    }
    if (addresses.some((a) => a.includes(':')))
      await p.addRoute({
        family: 6,
        dst: '::',
        dstLen: 0,
        nexthops: [{ oif: eth0.index, gateway: HOST_LINK_LOCAL6 }],
      });
    return eth0.address ?? '';
  } finally {
    p.close();
  }
}

/**
 * Makes a pod deaf to ARP requests and IPv6 neighbour solicitations (nft in its namespace):
 * the node then reaches it only through a permanent neighbour entry. The pod still asks for
 * its own gateway, and hears the answers.
 */
export function deafToNeighbourSolicitations(pod: TestNetns): void {
  const rules = `table arp tfl {
  chain input { type filter hook input priority 0; policy accept; arp operation request drop; }
}
table ip6 tfl {
  chain input { type filter hook input priority 0; policy accept; icmpv6 type nd-neighbor-solicit drop; }
}
`;
  execFileSync('ip', ['netns', 'exec', pod.name, 'nft', '-f', '-'], {
    input: rules,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
