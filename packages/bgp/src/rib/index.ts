/**
 * Routing information bases and the decision process.
 * @packageDocumentation
 */
export * from './decision.js';
export * from './prefix-table.js';
export * from './attr-store.js';
export * from './loc-rib.js';
