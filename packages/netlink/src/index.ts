// @tabby/netlink: Tabby's kernel interface. The codec (pure, ./codec) and the client over
// the tabby_netlink socket addon.
export * from './codec/index.js';
export * from './client/index.js';

/**
 * The route protocol number (rtm_protocol) on every kernel route Tabby programs, so the CNI
 * plugin and felix-lite touch only their own routes and never an operator's. 84 ('T'): not in
 * iproute2's rt_protos, and not Calico's 80, so Tabby and a leftover Calico do not fight over
 * routes. `ip route show proto 84` lists them.
 */
export const TABBY_ROUTE_PROTOCOL = 84;
