// The neighbour entries a VXLAN route needs (Calico programs them instead of letting the
// device learn): the remote VTEP's address -> MAC (ARP for IPv4, NDP for IPv6) on the
// vxlan device, and the remote MAC -> remote node's underlay address (FDB, `self`).
import type { IpVersion } from './ip.js';

export type Neighbour =
  | {
      readonly kind: 'arp';
      readonly family: IpVersion;
      readonly dev: string;
      /** The remote VTEP's tunnel address. */
      readonly ip: string;
      readonly mac: string;
    }
  | {
      readonly kind: 'fdb';
      readonly dev: string;
      readonly mac: string;
      /** The remote node's underlay address, where encapsulated frames go. */
      readonly dst: string;
    };

/** One string per entry the kernel keys separately: ARP by (dev, ip), FDB by (dev, mac). */
export function neighbourKeyId(n: Neighbour): string {
  return n.kind === 'arp' ? `arp|${n.dev}|${n.ip}` : `fdb|${n.dev}|${n.mac}`;
}

export function describeNeighbour(n: Neighbour): string {
  return n.kind === 'arp'
    ? `${n.ip} lladdr ${n.mac} dev ${n.dev} PERMANENT`
    : `${n.mac} dev ${n.dev} dst ${n.dst} self permanent`;
}
