/**
 * The storage backends behind the Backend interface, and how to pick one.
 *
 * @packageDocumentation
 */
export * from './config.js';
export { EtcdBackend, DEFAULT_PREFIX as ETCD_DEFAULT_PREFIX } from './etcd/index.js';
export type { EtcdBackendOptions } from './etcd/index.js';
export { KubernetesBackend, crdName, CRD_VERSION, loadKubeConfig } from './kubernetes/index.js';
export type { KubernetesBackendOptions, KubernetesConnection } from './kubernetes/index.js';
export { YamlDirBackend, ResourceFileError } from './yaml/index.js';
export type { YamlDirBackendOptions } from './yaml/index.js';
export { openBackend, readNamespaceLabels } from './open.js';
