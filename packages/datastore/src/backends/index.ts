/**
 * The storage backends behind the Backend interface, and how to pick one.
 *
 * @packageDocumentation
 */
export * from './config.js';
export { EtcdBackend, DEFAULT_PREFIX as ETCD_DEFAULT_PREFIX } from './etcd/index.js';
export type { EtcdBackendOptions } from './etcd/index.js';
