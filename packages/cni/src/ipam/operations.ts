// The plugin's datastore work as plain operations over @tabby/datastore: an IPAM assignment
// by handle (auto or explicit), release and lookup by handle, a network's handles (GC), the
// pools' room (STATUS) and the WorkloadEndpoints. Two callers, one behaviour: the plugin's
// in-process client (./datastore-client.ts) and tabby-node's CNI service, which does the
// same work for the plugin over its socket (packages/node/src/daemon/cni-service.ts).
// Errors are the datastore's and the IPAM's own, with their `code`; each caller maps them
// (the plugin to CNI codes, the service onto its socket).
import type { Backend, Datastore, Ipam } from '@tabby/datastore/core';
import type {
  Assignment,
  EndpointKey,
  EndpointStore,
  NamespaceLabels,
  PoolRoom,
  StoredEndpoint,
  WorkloadEndpointDoc,
} from '../commands/interfaces.js';
import { LABEL_NETWORK } from '../commands/endpoint.js';

/**
 * The pod namespace's labels for IPPool namespaceSelector: known already, or read on demand
 * (called by the IPAM only when a pool that could serve the pod selects by namespace, before
 * anything is assigned).
 */
export type NamespaceInput =
  { readonly labels: NamespaceLabels } | ((pools: readonly string[]) => Promise<NamespaceLabels>) | undefined;

/**
 * Assigns what `a` asks for, all or nothing: the addresses (bare, IPv4 first). An explicit
 * assignment that fails part-way gives back what it took, as autoAssign does.
 */
export async function assign(ipam: Ipam, a: Assignment, namespace: NamespaceInput): Promise<string[]> {
  if (a.kind === 'auto') {
    const r = await ipam.autoAssign({
      handleId: a.handle,
      num4: a.num4,
      num6: a.num6,
      node: a.node,
      attrs: a.attrs,
      ...(a.pools.length === 0 ? {} : { pools: a.pools }),
      ...(namespace === undefined
        ? {}
        : typeof namespace === 'function'
          ? { namespaceLabels: namespace }
          : { namespace }),
    });
    return [...r.ipv4, ...r.ipv6].map((x) => x.ip);
  }
  const got: string[] = [];
  try {
    for (const ip of a.ips)
      got.push((await ipam.assignIp({ ip, handleId: a.handle, node: a.node, attrs: a.attrs })).ip);
  } catch (e) {
    // What cannot be given back now stays under the handle: DEL releases it.
    if (got.length > 0) await ipam.releaseIps(got).catch(() => undefined);
    throw e;
  }
  return got;
}

/** Releases everything the handle holds; an unknown handle is no error. */
export function release(ipam: Ipam, handle: string): Promise<void> {
  return ipam.releaseByHandle(handle);
}

/** The addresses the handle holds now (bare); empty when it is unknown. */
export async function handleAddresses(ipam: Ipam, handle: string): Promise<string[]> {
  return (await ipam.ipsByHandle(handle)).map((a) => a.ip);
}

/** Every handle of `network`: the `<network>.` prefix (Calico's handle IDs). */
export async function networkHandles(backend: Backend, network: string): Promise<string[]> {
  const { items } = await backend.list('IPAMHandle');
  const p = `${network}.`;
  return items
    .map((h) => (h.spec as { handleID: string }).handleID)
    .filter((h) => h.startsWith(p) && h.length > p.length);
}

/** Each pool's room, disabled ones too. */
export async function poolRooms(ipam: Ipam): Promise<PoolRoom[]> {
  return (await ipam.getUtilization()).pools.map((p) => ({
    name: p.name,
    cidr: p.cidr,
    disabled: p.disabled,
    capacity: p.capacity,
    inUse: p.inUse,
    free: p.free,
  }));
}

/** WorkloadEndpoints through the validating Datastore. */
export class DatastoreEndpoints implements EndpointStore {
  constructor(private readonly ds: Datastore) {}

  async put(wep: WorkloadEndpointDoc): Promise<void> {
    // apply: create, or replace what a previous ADD of the same pod left.
    await this.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name: wep.name, namespace: wep.namespace, labels: wep.labels },
      spec: wep.spec,
    });
  }

  async get(key: EndpointKey): Promise<WorkloadEndpointDoc | undefined> {
    const w = await this.ds.get('WorkloadEndpoint', key.name, key.namespace);
    if (w === undefined) return undefined;
    const s = w.spec;
    return {
      namespace: w.metadata.namespace ?? key.namespace,
      name: w.metadata.name,
      labels: w.metadata.labels ?? {},
      spec: {
        orchestrator: s.orchestrator === 'k8s' ? 'k8s' : 'cni',
        node: s.node ?? '',
        containerID: s.containerID ?? '',
        ...(s.pod === undefined ? {} : { pod: s.pod }),
        ...(s.workload === undefined ? {} : { workload: s.workload }),
        endpoint: s.endpoint ?? '',
        interfaceName: s.interfaceName ?? '',
        ipNetworks: s.ipNetworks ?? [],
        mac: s.mac ?? '',
      },
    };
  }

  async delete(key: EndpointKey): Promise<'deleted' | 'absent'> {
    try {
      await this.ds.delete('WorkloadEndpoint', key.name, { namespace: key.namespace });
      return 'deleted';
    } catch (e) {
      if ((e as { code?: unknown }).code === 'NotFound') return 'absent';
      throw e;
    }
  }

  async list(node: string, network: string): Promise<readonly StoredEndpoint[]> {
    const { items } = await this.ds.list('WorkloadEndpoint');
    return items
      .filter((w) => w.spec.node === node && w.metadata.labels?.[LABEL_NETWORK] === network)
      .map((w) => ({
        namespace: w.metadata.namespace ?? 'default',
        name: w.metadata.name,
        containerID: w.spec.containerID ?? '',
        endpoint: w.spec.endpoint ?? '',
      }));
  }
}
