/**
 * The storage interface, its errors, and the in-memory backend.
 *
 * @packageDocumentation
 */
export * from './backend.js';
export * from './errors.js';
export * from './event-queue.js';
export { MemoryBackend } from './memory.js';
export * from './datastore.js';
