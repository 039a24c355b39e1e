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
