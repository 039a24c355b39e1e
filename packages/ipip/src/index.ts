/**
 * @tabby/ipip: Tabby's tunnel devices. `desiredTunnels()` turns the node's pools, addresses
 * and MTUs into a plan for `tunl0`, `vxlan.calico` and `vxlan-v6.calico`; `TunnelManager`
 * keeps the kernel equal to it; `encapsulationFor()` is the per-pool decision felix-lite's
 * routes follow; host MTU detection and the MTU file the CNI plugin reads complete it.
 *
 * @example
 * ```ts
 * import { desiredTunnels, NetlinkTunnelKernel, TunnelManager } from '@tabby/ipip';
 *
 * const manager = new TunnelManager({ kernel: new NetlinkTunnelKernel() });
 * manager.start();
 * manager.setPlan(desiredTunnels({ nodeName, nodeAddress, pools, vxlanTunnelAddress, hostMtu }));
 * ```
 *
 * @packageDocumentation
 */
export * from './encap.js';
export * from './mac.js';
export * from './ip.js';
export * from './mtu.js';
export * from './mtu-file.js';
export * from './desired.js';
export * from './clock.js';
export * from './loop.js';
export * from './kernel.js';
export * from './fake-kernel.js';
export * from './manager.js';
