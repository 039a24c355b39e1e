/**
 * IPAM: Calico's block-based address management (affine blocks, claims, borrowing, handles)
 * over any Backend, and the `ipam` CLI commands.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './block.js';
export * from './pools.js';
export * from './ipam.js';
export * from './report.js';
export * from './cli.js';
