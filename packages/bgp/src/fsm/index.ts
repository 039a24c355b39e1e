/**
 * The BGP finite state machine (RFC 4271 §8) without I/O, and session negotiation.
 * @packageDocumentation
 */
export * from './fsm.js';
export * from './negotiate.js';
export * from './collision.js';
