// The etcd v3 backend: see backend.ts.
export { EtcdBackend } from './backend.js';
export type { EtcdBackendOptions } from './backend.js';
export { DEFAULT_PREFIX, KeyLayout } from './keys.js';
