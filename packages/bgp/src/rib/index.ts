/**
 * Routing information bases and the decision process.
 * @packageDocumentation
 */
export * from './decision.js';
