// In-memory Dataplane and IpamClient with fault injection, for tests here and in e2e/.
export * from './dataplane.js';
export * from './ipam.js';
