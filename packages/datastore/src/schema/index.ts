/**
 * The schema language behind every resource: TypeScript types, validation and CRD schemas
 * from one source.
 *
 * @packageDocumentation
 */
export * from './schema.js';
export * from './check.js';
export * from './openapi.js';
export * from './ip.js';
