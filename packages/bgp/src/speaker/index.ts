/**
 * The speaker: sessions, RIB and policy put together.
 * @packageDocumentation
 */
export * from './rules.js';
export * from './adj-rib-out.js';
export * from './speaker.js';
export * from './listen-ranges.js';
export type { BestPathEvent } from '../rib/index.js';
