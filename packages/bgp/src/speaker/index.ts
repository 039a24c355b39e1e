/**
 * The speaker: sessions, RIB and policy put together.
 * @packageDocumentation
 */
export * from './rules.js';
