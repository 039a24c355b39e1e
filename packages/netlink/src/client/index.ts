export * from './native.js';
export * from './socket.js';
export * from './rtnl.js';
export * from './monitor.js';
