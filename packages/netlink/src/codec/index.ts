// The rtnetlink codec: pure functions over Buffers, no sockets.
export * from './constants.js';
export * from './errors.js';
export * from './ip.js';
export * from './writer.js';
export * from './reader.js';
export * from './ack.js';
export * from './link.js';
export * from './address.js';
export * from './route.js';
export * from './route-view.js';
export * from './neighbour.js';
export * from './rtnl.js';
