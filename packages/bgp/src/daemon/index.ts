/**
 * The standalone daemon: `bgp-ts run --config speaker.yaml`.
 * @packageDocumentation
 */
export * from './config.js';
export * from './daemon.js';
export * from './metrics.js';
