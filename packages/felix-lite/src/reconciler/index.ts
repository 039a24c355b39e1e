// The reconciler: delta tracking, the Kernel seam (real and fake), and the route reconciler.
// The clock and logger seams are @tabby/ipip's, shared by every reconciler.
export { ManualClock, silentLogger, systemClock } from '@tabby/ipip';
export type { Clock, Logger } from '@tabby/ipip';
export * from './delta-tracker.js';
export * from './kernel.js';
export * from './fake-kernel.js';
export * from './netlink-kernel.js';
export * from './reconciler.js';
export * from './route-index.js';
export * from './sysctls.js';
export * from './neighbour-kernel.js';
export * from './neighbour-reconciler.js';
