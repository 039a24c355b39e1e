export * from './datastore-client.js';
export * from './tabby-ipam.js';
