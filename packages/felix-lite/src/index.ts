/**
 * @tabby/felix-lite: Tabby's dataplane. `computeDesired()` turns the node's view of the cluster
 * (best paths, local endpoints, affine blocks, pools, host addresses) into kernel routes;
 * `RouteReconciler` keeps the kernel equal to them; `NeighbourReconciler` the VXLAN and pod
 * neighbour entries; `NatReconciler` writes NAT-outgoing for natOutgoing pools into nftables
 * (`table ip tabby`, `table ip6 tabby`) and repairs drift. Given a prom-client `Registry`,
 * they record the `tabby_dataplane_*` metrics (`DATAPLANE_METRICS`).
 *
 * @example
 * ```ts
 * import { computeDesired, ExecNft, NatReconciler, NetlinkKernel, RouteReconciler } from '@tabby/felix-lite';
 *
 * const kernel = new NetlinkKernel();
 * const reconciler = new RouteReconciler({ kernel, registry }); // registry: a prom-client Registry
 * reconciler.start();
 * const desired = computeDesired({ paths, endpoints, affineBlocks, pools, hostInterfaces });
 * reconciler.setDesired(desired.routes);
 * const nat = new NatReconciler({ nft: new ExecNft() });
 * nat.start();
 * nat.setDesired(desired.nat);
 * ```
 *
 * @packageDocumentation
 */
export * from './routes/index.js';
export * from './desired/index.js';
export * from './reconciler/index.js';
export * from './nat/index.js';
export * from './metrics/metrics.js';
