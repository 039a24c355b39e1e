/**
 * @tabby/felix-lite: Tabby's dataplane. `computeDesired()` turns the node's view of the cluster
 * (best paths, local endpoints, affine blocks, pools, host addresses) into kernel routes;
 * `RouteReconciler` keeps the kernel equal to them.
 *
 * @example
 * ```ts
 * import { computeDesired, NetlinkKernel, RouteReconciler } from '@tabby/felix-lite';
 *
 * const kernel = new NetlinkKernel();
 * const reconciler = new RouteReconciler({ kernel });
 * reconciler.start();
 * const desired = computeDesired({ paths, endpoints, affineBlocks, pools, hostInterfaces });
 * reconciler.setDesired(desired.routes);
 * ```
 *
 * @packageDocumentation
 */
export * from './routes/index.js';
export * from './desired/index.js';
export * from './reconciler/index.js';
export * from './nat/index.js';
