/**
 * @tabby/datastore: Calico v3 data for Tabby. This entry point re-exports the label
 * selector language; resources, backends and IPAM join it as they land.
 *
 * @packageDocumentation
 */
export * from './selector/index.js';
