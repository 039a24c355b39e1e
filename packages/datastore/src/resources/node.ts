// Node: Calico's libcalico-go v3 NodeSpec (v3.31.7): BGP addresses and AS, tunnel
// addresses, the node's addresses. The node daemon writes it; IPAM reads its labels
// (IPPool nodeSelector) and name.
import type { Issue } from '../schema/index.js';
import { parseAsNumber, s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';

/** Calico's ASNumber: an integer, or a string in plain or asdot form ("64512", "1.10"). */
export const asNumber = (description: string) => s.intOrString({ description });

export const nodeSpec = s.object({
  bgp: s.optional(
    s.object(
      {
        asNumber: s.optional(asNumber("This node's AS; absent: BGPConfiguration asNumber (default 64512).")),
        ipv4Address: s.optional(
          s.string({
            format: 'cidr',
            description: "The node's IPv4 address and subnet for BGP, e.g. 192.168.1.11/24.",
          }),
        ),
        ipv6Address: s.optional(
          s.string({ format: 'cidr', description: "The node's IPv6 address and subnet for BGP." }),
        ),
        ipv4IPIPTunnelAddr: s.optional(
          s.string({ format: 'ipv4', description: 'The address of tunl0 (from IPAM).' }),
        ),
        routeReflectorClusterID: s.optional(
          s.string({
            format: 'ipv4',
            description:
              'Makes this node a route reflector with this cluster ID; it leaves the node-to-node mesh.',
          }),
        ),
      },
      { description: 'BGP settings of the node.' },
    ),
  ),
  ipv4VXLANTunnelAddr: s.optional(
    s.string({ format: 'ipv4', description: 'The address of vxlan.calico (from IPAM).' }),
  ),
  vxlanTunnelMACAddr: s.optional(
    s.string({
      pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$',
      description: 'MAC address of vxlan.calico.',
    }),
  ),
  ipv6VXLANTunnelAddr: s.optional(
    s.string({ format: 'ipv6', description: 'The IPv6 address of vxlan-v6.calico.' }),
  ),
  vxlanTunnelMACAddrV6: s.optional(
    s.string({
      pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$',
      description: 'MAC address of vxlan-v6.calico.',
    }),
  ),
  orchRefs: s.optional(
    s.array(
      s.object({
        nodeName: s.optional(s.string({ description: "The node's name in the orchestrator." })),
        orchestrator: s.string({ description: 'e.g. "k8s".' }),
      }),
      { description: 'This node in orchestrators (the Kubernetes Node it belongs to).' },
    ),
  ),
  wireguard: s.optional(
    s.object(
      {
        interfaceIPv4Address: s.optional(
          s.string({ format: 'ipv4', description: 'Address of the IPv4 WireGuard interface.' }),
        ),
        interfaceIPv6Address: s.optional(
          s.string({ format: 'ipv6', description: 'Address of the IPv6 WireGuard interface.' }),
        ),
      },
      {
        description:
          "Calico's WireGuard addresses; kept for compatibility (Tabby runs no WireGuard and its start-up clears them).",
      },
    ),
  ),
  addresses: s.optional(
    s.array(
      s.object({
        address: s.string({
          format: 'ipOrCidr',
          description: 'An address of the node, with or without prefix length.',
        }),
        type: s.optional(
          s.enum(['CalicoNodeIP', 'InternalIP', 'ExternalIP'], {
            description:
              'CalicoNodeIP: a BGP address; InternalIP / ExternalIP: as the Kubernetes Node reports it.',
          }),
        ),
      }),
      { description: 'Addresses of the node (as Kubernetes reports them, and the BGP ones).' },
    ),
  ),
  interfaces: s.optional(
    s.array(
      s.object({
        name: s.optional(s.string({ description: 'The interface name, e.g. "eth0".' })),
        addresses: s.optional(
          s.array(s.string({ format: 'ipOrCidr' }), { description: "The interface's addresses." }),
        ),
      }),
      { description: "The host's interfaces and their addresses (written at start-up)." },
    ),
  ),
});
export type NodeSpec = Infer<typeof nodeSpec>;
export type Node = Resource<'Node', NodeSpec>;

/** An ASNumber field's value as a number; undefined when not a valid AS (0 is not one). */
export function asNumberValue(v: number | string): number | undefined {
  const n = typeof v === 'number' ? v : parseAsNumber(v);
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 0xffffffff ? n : undefined;
}

/** Problems with an ASNumber field at `path` (absent is fine). */
export function checkAsNumber(v: number | string | undefined, path: string): Issue[] {
  if (v === undefined) return [];
  return asNumberValue(v) === undefined
    ? [{ path, reason: `${JSON.stringify(v)} is not an AS number (1-4294967295, or asdot like "1.10")` }]
    : [];
}

export const NodeKind = defineKind({
  kind: 'Node',
  description: 'A Tabby node: its BGP addresses and AS, tunnel addresses and node addresses.',
  spec: nodeSpec,
  validate: (r: Node) => {
    const out: Issue[] = [...checkAsNumber(r.spec.bgp?.asNumber, 'spec.bgp.asNumber')];
    if (r.spec.bgp !== undefined && Object.keys(r.spec.bgp).length === 0)
      out.push({ path: 'spec.bgp', reason: 'is empty: set at least one field, or leave bgp out' });
    return out;
  },
  checks: ['`bgp.asNumber` is 1-4294967295 (or asdot).', '`bgp`, when present, has at least one field.'],
  columns: [
    { name: 'IPv4', jsonPath: '.spec.bgp.ipv4Address', type: 'string' },
    { name: 'AS', jsonPath: '.spec.bgp.asNumber', type: 'string' },
  ],
});
