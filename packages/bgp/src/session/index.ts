/**
 * The session layer: the FSM driven over a transport with an injected clock, and peers
 * with collision resolution and damped restarts.
 * @packageDocumentation
 */
export * from './clock.js';
export * from './transport.js';
export * from './connection.js';
export * from './peer.js';
export * from './listener.js';
