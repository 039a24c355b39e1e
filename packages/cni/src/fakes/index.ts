// In-memory Dataplane, IpamClient and EndpointStore with fault injection, for tests here and in e2e/.
export * from './dataplane.js';
export * from './ipam.js';
export * from './endpoints.js';
