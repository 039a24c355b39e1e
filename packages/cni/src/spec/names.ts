// Names derived from the attachment: the host-side veth and the IPAM handle.
import { createHash } from 'node:crypto';
import type { CniArgs } from './env.js';

const sha1hex = (s: string): string => createHash('sha1').update(s).digest('hex');

/**
 * Calico's host veth name: `cali` + the first 11 hex digits of sha1("<namespace>.<pod>"),
 * so felix-lite (and an operator) can find a pod's veth from its name alone. Without
 * Kubernetes pod arguments: `cali` + the first 11 hex digits of sha1(<container ID>), stable
 * across ADD, CHECK and DEL of one container. (Two attachments of one non-Kubernetes
 * container to one network would need the same host name: the second ADD fails with 103.)
 */
export function hostVethName(containerId: string, args: CniArgs): string {
  const key = args.pod === undefined ? containerId : `${args.pod.namespace}.${args.pod.name}`;
  return `cali${sha1hex(key).slice(0, 11)}`;
}

/** Calico's IPAM handle: `<network>.<containerID>`; GC finds a network's by this prefix. */
export const ipamHandle = (network: string, containerId: string): string => `${network}.${containerId}`;

/** The container ID of a handle of `network`, or undefined when it is another network's. */
export function containerOfHandle(network: string, handle: string): string | undefined {
  const p = `${network}.`;
  return handle.startsWith(p) && handle.length > p.length ? handle.slice(p.length) : undefined;
}

/**
 * A WorkloadEndpoint's name as Calico computes it (libcalico-go lib/names
 * CalculateWorkloadEndpointName): `<node>-k8s-<pod>-<endpoint>` for Kubernetes pods,
 * `<node>-cni-<containerID>-<endpoint>` otherwise, each part's own `-` doubled so the parts
 * can be told apart. A part may not begin or end with `-` (Calico refuses those too).
 */
export function workloadEndpointName(
  node: string,
  orchestrator: 'k8s' | 'cni',
  workload: string,
  endpoint: string,
): string {
  const parts = { node, orchestrator, [orchestrator === 'k8s' ? 'pod' : 'containerID']: workload, endpoint };
  return Object.entries(parts)
    .map(([field, v]) => {
      if (v === '') throw new Error(`WorkloadEndpoint name: ${field} is empty`);
      if (v.startsWith('-') || v.endsWith('-'))
        throw new Error(
          `WorkloadEndpoint name: ${field} ${JSON.stringify(v)} must not begin or end with '-'`,
        );
      return v.replaceAll('-', '--');
    })
    .join('-');
}
