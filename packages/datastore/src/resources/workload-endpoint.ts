// WorkloadEndpoint: one pod's interface, written by the CNI plugin (libcalico-go v3
// WorkloadEndpointSpec, v3.31.7). felix-lite programs its route from it.
import { s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';

export const workloadEndpointSpec = s.object({
  orchestrator: s.optional(s.string({ description: 'e.g. "k8s".' })),
  workload: s.optional(s.string({ description: 'The workload name (empty for Kubernetes pods).' })),
  node: s.optional(s.string({ description: 'The node the pod runs on.' })),
  containerID: s.optional(s.string({ description: "The pod sandbox's container ID." })),
  pod: s.optional(s.string({ description: 'The pod name.' })),
  endpoint: s.optional(s.string({ description: 'e.g. "eth0".' })),
  serviceAccountName: s.optional(s.string({ description: "The pod's Kubernetes ServiceAccount." })),
  ipNetworks: s.optional(
    s.array(s.string({ format: 'cidr' }), { description: "The pod's addresses, as /32 and /128." }),
  ),
  ipNATs: s.optional(
    s.array(
      s.object({
        internalIP: s.string({ format: 'ip', description: 'One of the pod addresses in ipNetworks.' }),
        externalIP: s.string({ format: 'ip', description: 'The address connections arrive at.' }),
      }),
      { description: '1:1 NAT mappings (Calico floating IPs); stored, not programmed by Tabby.' },
    ),
  ),
  ipv4Gateway: s.optional(
    s.string({ format: 'ipv4', description: "The pod's IPv4 default gateway (169.254.1.1)." }),
  ),
  ipv6Gateway: s.optional(s.string({ format: 'ipv6', description: "The pod's IPv6 default gateway." })),
  profiles: s.optional(
    s.array(s.string(), {
      description: 'Calico security profiles (e.g. kns.<namespace>); stored, not enforced by Tabby.',
    }),
  ),
  interfaceName: s.optional(
    s.string({ maxLength: 15, description: 'The host-side interface (cali + 11 hex digits).' }),
  ),
  mac: s.optional(
    s.string({
      pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$',
      description: "MAC address of the pod's interface.",
    }),
  ),
  ports: s.optional(
    s.array(
      s.object({
        name: s.string({ description: 'The port name, as in the pod spec.' }),
        protocol: s.intOrString({ description: 'TCP, UDP, SCTP or a protocol number.' }),
        port: s.int({ minimum: 1, maximum: 65535, description: 'The container port.' }),
        hostPort: s.optional(
          s.int({ minimum: 0, maximum: 65535, description: 'The host port it is mapped to (0: none).' }),
        ),
        hostIP: s.optional(s.string({ description: 'The host address of the mapping.' })),
      }),
      { description: "The pod's named and mapped ports." },
    ),
  ),
  allowSpoofedSourcePrefixes: s.optional(
    s.array(s.string({ format: 'cidr' }), {
      description: 'Source prefixes the pod may send from besides its own (bypassing the RPF check).',
    }),
  ),
});
export type WorkloadEndpointSpec = Infer<typeof workloadEndpointSpec>;
export type WorkloadEndpoint = Resource<'WorkloadEndpoint', WorkloadEndpointSpec>;

export const WorkloadEndpointKind = defineKind({
  kind: 'WorkloadEndpoint',
  description: "A pod's network interface: its addresses and the host-side veth.",
  spec: workloadEndpointSpec,
  columns: [
    { name: 'Node', jsonPath: '.spec.node', type: 'string' },
    { name: 'Networks', jsonPath: '.spec.ipNetworks', type: 'string' },
    { name: 'Interface', jsonPath: '.spec.interfaceName', type: 'string' },
  ],
});
