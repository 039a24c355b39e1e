// @tabby/netlink: Tabby's kernel interface. The codec (pure, ./codec) and the client over
// the tabby_netlink socket addon.
export * from './codec/index.js';
export * from './client/index.js';
