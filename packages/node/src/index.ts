// @tabby/node: the per-node daemon. bgpconfig/ is the pure function from a datastore
// snapshot to this node's effective BGP configuration (peers, exports, filters).
export * from './bgpconfig/model.js';
export * from './bgpconfig/inputs.js';
export {
  computeBgpConfig,
  hashToIPv4,
  bgpFilterFunctionName,
  DEFAULT_AS_NUMBER,
} from './bgpconfig/compute.js';
export { serviceRoutes, serviceCidrs, EXCLUDE_FROM_LB_LABEL } from './bgpconfig/services.js';
// startup/: what calico-node's -startup and -allocate-tunnel-addrs do (settings, address
// autodetection, the Node, default pools, tunnel addresses), run once before the daemon's watches.
export * from './startup/index.js';
