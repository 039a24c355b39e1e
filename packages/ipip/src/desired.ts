// The tunnel devices a node should have, as a pure function of its pools, its addresses
// (node IP, the tunnel addresses IPAM gave it) and MTUs:
//
//   tunl0         kind ipip (the module's fallback device), address <IPIP tunnel address>/32,
//                 MTU host - 20, up; when no pool wants IPIP: no address and down (the kernel
//                 will not delete the fallback device; that is how the module leaves it)
//   vxlan.calico  kind vxlan, VNI 4096, port 4789, local <node IP> on the device holding it,
//                 learning off, MAC from the node name, address <VXLAN tunnel address>/32,
//                 MTU host - 50, up; deleted when no pool wants VXLAN
//
// A device that is wanted but lacks what it needs (no tunnel address from IPAM yet, no node
// IP) is neither created nor removed: it is reported as waiting and left as it is.
import type { PoolEncap } from './encap.js';
import { tunnelsNeeded } from './encap.js';
import { canonicalIp } from './ip.js';
import { normalizeMac, vxlanMacForNode } from './mac.js';
import type { MtuConfig } from './mtu.js';
import { tunnelMtus } from './mtu.js';

export const DEFAULT_IPIP_DEVICE = 'tunl0';
export const DEFAULT_VXLAN_DEVICE = 'vxlan.calico';
/** Calico's default VNI and port (FelixConfiguration vxlanVNI, vxlanPort). */
export const DEFAULT_VXLAN_VNI = 4096;
export const DEFAULT_VXLAN_PORT = 4789;

export interface TunnelInputs {
  /** The Node's name (the VXLAN MAC derives from it). */
  readonly nodeName: string;
  /** This node's IPv4 address (Node.spec.bgp.ipv4Address, with or without a prefix length). */
  readonly nodeAddress?: string;
  readonly pools: readonly PoolEncap[];
  /** Node.spec.ipv4IPIPTunnelAddr, from IPAM. */
  readonly ipipTunnelAddress?: string;
  /** Node.spec.ipv4VXLANTunnelAddr, from IPAM. */
  readonly vxlanTunnelAddress?: string;
  /** Node.spec.vxlanTunnelMACAddr: overrides the derived MAC. */
  readonly vxlanMac?: string;
  /** The host MTU (detectHostMtu). */
  readonly hostMtu: number;
  readonly mtu?: MtuConfig;
  readonly vxlanVni?: number;
  readonly vxlanPort?: number;
  readonly ipipDevice?: string;
  readonly vxlanDevice?: string;
}

export interface DesiredIpip {
  readonly kind: 'ipip';
  readonly name: string;
  readonly mtu: number;
  /** IPv4, configured as /32. */
  readonly address: string;
}

export interface DesiredVxlan {
  readonly kind: 'vxlan';
  readonly name: string;
  readonly mtu: number;
  /** IPv4, configured as /32. */
  readonly address: string;
  readonly mac: string;
  readonly vni: number;
  readonly port: number;
  /** The node IP: source of the encapsulated packets; its interface is the device's parent. */
  readonly local: string;
}

export type DesiredTunnel = DesiredIpip | DesiredVxlan;

/** A device no pool needs: vxlan is deleted, the ipip fallback device is emptied and set down. */
export interface UnwantedTunnel {
  readonly kind: 'ipip' | 'vxlan';
  readonly name: string;
}

export interface TunnelWait {
  readonly name: string;
  readonly reason: string;
}

export interface TunnelPlan {
  readonly devices: readonly DesiredTunnel[];
  readonly unwanted: readonly UnwantedTunnel[];
  /** Wanted devices that cannot be configured yet (left as they are). */
  readonly waiting: readonly TunnelWait[];
}

function ipv4(text: string, what: string): string {
  const slash = text.indexOf('/');
  const a = canonicalIp(slash < 0 ? text : text.slice(0, slash));
  if (a.includes(':')) throw new TypeError(`${what} ${text} is not IPv4`);
  return a;
}

/** The plan for this node's tunnel devices. Throws a TypeError on malformed inputs. */
export function desiredTunnels(inputs: TunnelInputs): TunnelPlan {
  const needs = tunnelsNeeded(inputs.pools);
  const mtus = tunnelMtus(inputs.hostMtu, inputs.mtu);
  const ipipName = inputs.ipipDevice ?? DEFAULT_IPIP_DEVICE;
  const vxlanName = inputs.vxlanDevice ?? DEFAULT_VXLAN_DEVICE;
  const devices: DesiredTunnel[] = [];
  const unwanted: UnwantedTunnel[] = [];
  const waiting: TunnelWait[] = [];

  if (!needs.ipip) unwanted.push({ kind: 'ipip', name: ipipName });
  else if (inputs.ipipTunnelAddress === undefined)
    waiting.push({ name: ipipName, reason: 'no IPIP tunnel address allocated to this node yet' });
  else
    devices.push({
      kind: 'ipip',
      name: ipipName,
      mtu: mtus.ipip,
      address: ipv4(inputs.ipipTunnelAddress, 'IPIP tunnel address'),
    });

  if (!needs.vxlan) unwanted.push({ kind: 'vxlan', name: vxlanName });
  else if (inputs.vxlanTunnelAddress === undefined)
    waiting.push({ name: vxlanName, reason: 'no VXLAN tunnel address allocated to this node yet' });
  else if (inputs.nodeAddress === undefined)
    waiting.push({ name: vxlanName, reason: 'this node has no IPv4 address for the VXLAN source' });
  else {
    const vni = inputs.vxlanVni ?? DEFAULT_VXLAN_VNI;
    const port = inputs.vxlanPort ?? DEFAULT_VXLAN_PORT;
    if (!Number.isInteger(vni) || vni < 1 || vni >= 1 << 24) throw new RangeError(`invalid VXLAN VNI ${vni}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new RangeError(`invalid VXLAN port ${port}`);
    let mac = vxlanMacForNode(inputs.nodeName, 4);
    if (inputs.vxlanMac !== undefined && inputs.vxlanMac !== '') {
      const m = normalizeMac(inputs.vxlanMac);
      if (m === undefined) throw new TypeError(`invalid VXLAN MAC ${JSON.stringify(inputs.vxlanMac)}`);
      mac = m;
    }
    devices.push({
      kind: 'vxlan',
      name: vxlanName,
      mtu: mtus.vxlan,
      address: ipv4(inputs.vxlanTunnelAddress, 'VXLAN tunnel address'),
      mac,
      vni,
      port,
      local: ipv4(inputs.nodeAddress, 'node address'),
    });
  }
  return { devices, unwanted, waiting };
}
