/**
 * The Kubernetes backend: Tabby's kinds as custom resources of tabby.dev/v1.
 *
 * @packageDocumentation
 */
export { KubernetesBackend, CRD_VERSION, crdName, toResource } from './backend.js';
export type { KubernetesBackendOptions } from './backend.js';
export { loadKubeConfig, SERVICE_ACCOUNT_DIR } from './config.js';
export type { KubernetesConnection } from './config.js';
