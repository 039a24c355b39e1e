/**
 * @tabby/datastore/core: the validating store, IPAM and the backend switch, for a
 * short-lived process that loads only what it uses (the CNI plugin, once per pod). The
 * package's main entry also re-exports manifest reading, the CRDs and the CLI's helpers,
 * which bring the `yaml` library with them; nothing here does (a YAML-directory backend
 * loads it when opened).
 *
 * @packageDocumentation
 */
export { Datastore } from './store/datastore.js';
export type { DatastoreOptions } from './store/datastore.js';
export type { AnyResource, Backend } from './store/backend.js';
export { Ipam } from './ipam/ipam.js';
export type { AutoAssignRequest, AutoAssignResult } from './ipam/ipam.js';
export { datastoreConfig } from './backends/config.js';
export type { DatastoreConfig } from './backends/config.js';
export { openBackend, readNamespaceLabels } from './backends/open.js';
