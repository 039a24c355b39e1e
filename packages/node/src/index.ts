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
// The control socket's client (what `tabby status` / `tabby routes` ask) and the CNI plugin
// run as a runtime runs it: for the demo, the tests and the cluster lab (e2e/).
export { ask } from './daemon/server.js';
export type { ControlReply, RouteReport, ProgrammedRoute } from './daemon/server.js';
export type { DaemonStatus, PeerView } from './daemon/node-daemon.js';
export * from './lab/cni-exec.js';
export { table } from './bgpconfig/render/table.js';
