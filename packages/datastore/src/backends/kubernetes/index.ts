/**
 * The Kubernetes backend: Tabby's kinds as custom resources of tabby.dev/v1.
 *
 * @packageDocumentation
 */
export { KubernetesBackend, CRD_VERSION, crdName, toResource } from './backend.js';
export type { KubernetesBackendOptions } from './backend.js';
export { loadKubeConfig, SERVICE_ACCOUNT_DIR } from './config.js';
export type { KubernetesConnection } from './config.js';
// The list+watch loop and the raw request, for watching built-in kinds (the node daemon).
export { KubernetesWatch } from './watch.js';
export type { Versioned, WatchTransport, WatchTiming } from './watch.js';
export { kubeRequest, readBody } from './request.js';
export type { KubeRequest } from './request.js';
export { Backoff, sleep } from './backoff.js';
export { parseStatus } from './status.js';
export type { Status, StatusCause, StatusDetails } from './status.js';
