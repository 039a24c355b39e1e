/**
 * What calico-node's `-startup` and `-allocate-tunnel-addrs` do, as a library the daemon calls
 * once before it starts its watches.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './ipnet.js';
export * from './host-network.js';
export * from './interfaces.js';
export * from './autodetect.js';
export * from './settings.js';
export * from './addresses.js';
export * from './register.js';
export * from './pools.js';
export * from './tunnel-addresses.js';
