/**
 * Calico's resource kinds as Tabby stores them: one schema per kind gives the TypeScript
 * type, the validator and the CRD schema.
 *
 * @packageDocumentation
 */
export * from './meta.js';
export * from './kinds.js';
export * from './define.js';
export * from './ipam.js';
export * from './ippool.js';
export * from './node.js';
export * from './workload-endpoint.js';
export * from './bgp.js';
export * from './registry.js';
export * from './parse.js';
export * from './manifest.js';
export * from './crds.js';
export * from './crds-render.js';
export * from './docs-render.js';
