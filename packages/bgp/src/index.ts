/**
 * bgp-ts: a BGP-4 speaker in TypeScript. This entry point re-exports the wire codec;
 * the FSM, RIB and session layers join it as they land.
 *
 * @packageDocumentation
 */
export * from './wire/index.js';
