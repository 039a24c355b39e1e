// The tunnel devices a node should have, as a pure function of its pools, its addresses
// (node IPs, the tunnel addresses IPAM gave it) and MTUs:
//
//   tunl0            kind ipip (the module's fallback device), address <IPIP tunnel address>/32,
//                    MTU host - 20, up; when no pool wants IPIP: no address and down (the
//                    kernel will not delete the fallback device; that is how the module leaves it)
//   vxlan.calico     kind vxlan, VNI 4096, port 4789, local <node IPv4> on the device holding
//                    it, learning off, MAC from the node name, address <VXLAN tunnel
//                    address>/32, MTU host - 50, up; deleted when no IPv4 pool wants VXLAN
//   vxlan-v6.calico  the same for IPv6 pools (Calico's VXLANIfaceNameV6): local <node IPv6>,
//                    MAC from "<node name>-v6", address Node.spec.ipv6VXLANTunnelAddr/128, MTU
//                    host - 70 (the IPv6 outer header is 20 bytes longer); same VNI and port
//                    (the kernel keeps vxlan devices of different families apart)
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
export const DEFAULT_VXLAN_V6_DEVICE = 'vxlan-v6.calico';
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
  /** This node's IPv6 address (Node.spec.bgp.ipv6Address): the source of IPv6 VXLAN. */
  readonly nodeAddressV6?: string;
  /** Node.spec.ipv6VXLANTunnelAddr, from IPAM. */
  readonly vxlanTunnelAddressV6?: string;
  /** Node.spec.vxlanTunnelMACAddrV6: overrides the derived MAC. */
  readonly vxlanMacV6?: string;
  /** The host MTU (detectHostMtu). */
  readonly hostMtu: number;
  readonly mtu?: MtuConfig;
  readonly vxlanVni?: number;
  readonly vxlanPort?: number;
  readonly ipipDevice?: string;
  readonly vxlanDevice?: string;
  readonly vxlanDeviceV6?: string;
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
  /** The family of the device's addresses and of the underlay it encapsulates into. */
  readonly family: 4 | 6;
  readonly name: string;
  readonly mtu: number;
  /** The VTEP's tunnel address, configured as /32 (IPv4) or /128 (IPv6). */
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

function address(family: 4 | 6, text: string, what: string): string {
  const slash = text.indexOf('/');
  const a = canonicalIp(slash < 0 ? text : text.slice(0, slash));
  if (a.includes(':') !== (family === 6)) throw new TypeError(`${what} ${text} is not IPv${family}`);
  return a;
}

/** The plan for this node's tunnel devices. Throws a TypeError on malformed inputs. */
export function desiredTunnels(inputs: TunnelInputs): TunnelPlan {
  const needs = tunnelsNeeded(inputs.pools);
  const mtus = tunnelMtus(inputs.hostMtu, inputs.mtu);
  const ipipName = inputs.ipipDevice ?? DEFAULT_IPIP_DEVICE;
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
      address: address(4, inputs.ipipTunnelAddress, 'IPIP tunnel address'),
    });

  const vni = inputs.vxlanVni ?? DEFAULT_VXLAN_VNI;
  const port = inputs.vxlanPort ?? DEFAULT_VXLAN_PORT;
  const vxlan = (
    family: 4 | 6,
    name: string,
    needed: boolean,
    tunnelAddress: string | undefined,
    nodeAddress: string | undefined,
    configuredMac: string | undefined,
    mtu: number,
  ): void => {
    const v = family === 4 ? 'VXLAN' : 'IPv6 VXLAN';
    if (!needed) unwanted.push({ kind: 'vxlan', name });
    else if (tunnelAddress === undefined)
      waiting.push({ name, reason: `no ${v} tunnel address allocated to this node yet` });
    else if (nodeAddress === undefined)
      waiting.push({ name, reason: `this node has no IPv${family} address for the ${v} source` });
    else {
      if (!Number.isInteger(vni) || vni < 1 || vni >= 1 << 24)
        throw new RangeError(`invalid VXLAN VNI ${vni}`);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new RangeError(`invalid VXLAN port ${port}`);
      let mac = vxlanMacForNode(inputs.nodeName, family);
      if (configuredMac !== undefined && configuredMac !== '') {
        const m = normalizeMac(configuredMac);
        if (m === undefined) throw new TypeError(`invalid ${v} MAC ${JSON.stringify(configuredMac)}`);
        mac = m;
      }
      devices.push({
        kind: 'vxlan',
        family,
        name,
        mtu,
        address: address(family, tunnelAddress, `${v} tunnel address`),
        mac,
        vni,
        port,
        local: address(family, nodeAddress, family === 4 ? 'node address' : 'node IPv6 address'),
      });
    }
  };
  vxlan(
    4,
    inputs.vxlanDevice ?? DEFAULT_VXLAN_DEVICE,
    needs.vxlan,
    inputs.vxlanTunnelAddress,
    inputs.nodeAddress,
    inputs.vxlanMac,
    mtus.vxlan,
  );
  vxlan(
    6,
    inputs.vxlanDeviceV6 ?? DEFAULT_VXLAN_V6_DEVICE,
    needs.vxlanV6,
    inputs.vxlanTunnelAddressV6,
    inputs.nodeAddressV6,
    inputs.vxlanMacV6,
    mtus.vxlanV6,
  );
  return { devices, unwanted, waiting };
}
