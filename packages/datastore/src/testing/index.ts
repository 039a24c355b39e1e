/**
 * Test support other packages share: a real etcd for tests (start, kill, restart), and for
 * the Kubernetes backend an in-process API server that follows the documented API
 * semantics, a KubeConfig pointing at it, and Kubernetes API bodies copied from the
 * documentation. Not for production code.
 *
 * @packageDocumentation
 */
export * from './etcd-server.js';
export * from './fake-apiserver.js';
export * from './kube.js';
export * from './recorded.js';
