/**
 * @tabby/datastore: Calico v3 resources for Tabby, the datastore that holds them (a YAML
 * directory, etcd v3 or Kubernetes), and IPAM.
 *
 * ```ts
 * import { Datastore, Ipam, openBackend, datastoreConfig } from '@tabby/datastore';
 * const backend = await openBackend(datastoreConfig(process.env));
 * const ds = new Datastore(backend);
 * await ds.applyManifest(calicoYaml);            // validated, stored whole or not at all
 * const ipam = new Ipam({ backend });
 * const { ipv4 } = await ipam.autoAssign({ handleId: 'k8s-pod-network.abc', num4: 1, num6: 0, node: 'node-1' });
 * ```
 *
 * @packageDocumentation
 */
export * from './selector/index.js';
export * from './schema/index.js';
export * from './resources/index.js';
export * from './store/index.js';
export * from './backends/config.js';
export { openBackend, readNamespaceLabels } from './backends/open.js';
export * from './ipam/index.js';
