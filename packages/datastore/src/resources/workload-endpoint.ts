// WorkloadEndpoint: one pod's interface, written by the CNI plugin (libcalico-go v3
// WorkloadEndpointSpec, v3.31.7). felix-lite programs its route from it.
import { s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';

export const workloadEndpointSpec = s.object({
  orchestrator: s.optional(s.string({ description: 'e.g. "k8s".' })),
  workload: s.optional(s.string()),
  node: s.optional(s.string({ description: 'The node the pod runs on.' })),
  containerID: s.optional(s.string()),
  pod: s.optional(s.string()),
  endpoint: s.optional(s.string({ description: 'e.g. "eth0".' })),
  serviceAccountName: s.optional(s.string()),
  ipNetworks: s.optional(
    s.array(s.string({ format: 'cidr' }), { description: "The pod's addresses, as /32 and /128." }),
  ),
  ipNATs: s.optional(
    s.array(s.object({ internalIP: s.string({ format: 'ip' }), externalIP: s.string({ format: 'ip' }) })),
  ),
  ipv4Gateway: s.optional(s.string({ format: 'ipv4' })),
  ipv6Gateway: s.optional(s.string({ format: 'ipv6' })),
  profiles: s.optional(s.array(s.string())),
  interfaceName: s.optional(
    s.string({ maxLength: 15, description: 'The host-side interface (cali + 11 hex digits).' }),
  ),
  mac: s.optional(s.string({ pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$' })),
  ports: s.optional(
    s.array(
      s.object({
        name: s.string(),
        protocol: s.intOrString(),
        port: s.int({ minimum: 1, maximum: 65535 }),
        hostPort: s.optional(s.int({ minimum: 0, maximum: 65535 })),
        hostIP: s.optional(s.string()),
      }),
    ),
  ),
  allowSpoofedSourcePrefixes: s.optional(s.array(s.string({ format: 'cidr' }))),
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
