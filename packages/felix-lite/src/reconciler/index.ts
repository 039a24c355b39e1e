// The reconciler: delta tracking, the Kernel seam (real and fake), and the route reconciler.
export * from './clock.js';
export * from './logger.js';
export * from './delta-tracker.js';
export * from './kernel.js';
export * from './fake-kernel.js';
export * from './netlink-kernel.js';
export * from './reconciler.js';
export * from './sysctls.js';
export * from './neighbour-kernel.js';
export * from './neighbour-reconciler.js';
