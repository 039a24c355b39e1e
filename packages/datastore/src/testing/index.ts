/**
 * Test support other packages share: a real etcd for tests (start, kill, restart).
 *
 * @packageDocumentation
 */
export * from './etcd-server.js';
