// The TunnelManager: makes the kernel's tunnel devices equal to a TunnelPlan and keeps them
// so (Calico's keepDeviceInSync / configureTunnelDevice, driven by events instead of a 10 s
// poll). Each pass reads the devices and repairs what differs:
//
// - missing: created (vxlan with VNI, port, local, parent, learning off, MTU and MAC; ipip as
//   tunl0, which the module may have created meanwhile: EEXIST is taken as success);
// - another kind under our name, or a vxlan device whose VNI, port, local address, parent or
//   learning differ (the kernel cannot change those in place): deleted and created again;
// - MTU or MAC different: set in place;
// - addresses of the device's family: exactly the tunnel address /32 or /128 (others
//   removed, as Calico; an IPv6 device's link-local fe80::/10 addresses are the kernel's
//   own and stay: removed, they would only come back with the next down and up);
// - down: set up, after the address is in place;
// - unwanted (no pool needs it): vxlan deleted; the ipip fallback device, which the kernel
//   will not delete, emptied of its IPv4 addresses and set down (as the module leaves it).
//   A device of another kind named tunl0 is not ours and is left alone.
//
// Nothing is written before the first setPlan(): a manager that starts without a plan must
// not take an empty one for "no tunnels" and delete a working vxlan.calico on restart.
// Link and address events on our devices (or the node address moving) trigger a pass within
// the debounce, so a device deleted or changed by hand is back within milliseconds; a
// periodic resync covers lost events; failures back off exponentially.
import type { LinkInfo, LinkSpec } from '@tabby/netlink/codec';
import { IFA_F_NODAD, isErrno } from '@tabby/netlink/codec';
import type { DesiredTunnel, DesiredVxlan, TunnelPlan, TunnelWait, UnwantedTunnel } from './desired.js';
import type { TunnelKernel, TunnelKernelEvent } from './kernel.js';
import type { Clock, Logger } from './clock.js';
import { silentLogger } from './clock.js';
import type { LoopTiming } from './loop.js';
import { ReconcileLoop } from './loop.js';

export interface TunnelManagerComponents {
  readonly kernel: TunnelKernel;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly random?: () => number;
}

export interface TunnelFailure {
  readonly name: string;
  readonly error: Error;
}

export interface TunnelPassResult {
  /** What was written, in order ("created vxlan.calico", "vxlan.calico: mtu 1500 -> 1450"...). */
  readonly actions: readonly string[];
  /** Wanted devices that cannot be configured yet: from the plan, or found in the kernel (no parent). */
  readonly waiting: readonly TunnelWait[];
  /** Devices whose repair failed this pass: retried with backoff. */
  readonly failed: readonly TunnelFailure[];
  /** Every device as planned (waiting ones aside). */
  readonly inSync: boolean;
}

const hostLen = (family: 4 | 6): number => (family === 4 ? 32 : 128);

/** fe80::/10, in the kernel's canonical text. */
function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

export class TunnelManager {
  private readonly kernel: TunnelKernel;
  private readonly log: Logger;
  private readonly loop: ReconcileLoop<TunnelPassResult>;
  private plan: TunnelPlan | undefined;
  private unwatch: (() => void) | undefined;
  /** Names and indexes of the devices we manage, and the node address whose moves matter. */
  private readonly indexes = new Set<number>();

  lastResult: TunnelPassResult | undefined;
  lastError: Error | undefined;

  constructor(components: TunnelManagerComponents, timing: LoopTiming = {}) {
    this.kernel = components.kernel;
    this.log = components.logger ?? silentLogger;
    this.loop = new ReconcileLoop<TunnelPassResult>(
      {
        pass: () => this.pass(),
        retryIn: (r, attempt) => (r.failed.length > 0 ? this.loop.backoff(attempt) : undefined),
        ...(components.clock !== undefined ? { clock: components.clock } : {}),
        ...(components.random !== undefined ? { random: components.random } : {}),
      },
      timing,
    );
    this.loop.onPass((r) => {
      if (r instanceof Error) {
        this.lastError = r;
        this.log.warn({ err: r }, 'tunnel pass failed');
      } else {
        this.lastResult = r;
        this.lastError = undefined;
      }
    });
  }

  /** The devices wanted from now on (all of them: a device not in the plan is left alone). */
  setPlan(plan: TunnelPlan): void {
    const names = new Set<string>();
    for (const d of [...plan.devices, ...plan.unwanted, ...plan.waiting]) {
      if (names.has(d.name)) throw new TypeError(`tunnel device ${d.name} appears twice in the plan`);
      names.add(d.name);
    }
    this.plan = plan;
    this.loop.kick();
  }

  start(): void {
    if (this.unwatch === undefined) this.unwatch = this.kernel.watch((e) => this.onEvent(e));
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    await this.loop.stop();
  }

  /** One pass now (after the one in flight); rejects when it fails as a whole. */
  apply(): Promise<TunnelPassResult> {
    return this.loop.run();
  }

  onPass(fn: (r: TunnelPassResult | Error) => void): () => void {
    return this.loop.onPass(fn);
  }

  // --- events

  private onEvent(e: TunnelKernelEvent): void {
    const plan = this.plan;
    if (plan === undefined) return;
    switch (e.kind) {
      case 'overrun':
        this.loop.requestResync();
        return;
      case 'link':
        if (this.managed(plan, e.link.name) || this.indexes.has(e.link.index)) this.loop.kick();
        return;
      case 'address': {
        const node = plan.devices.some((d) => d.kind === 'vxlan' && d.local === e.address.address);
        if (this.indexes.has(e.address.index) || node) this.loop.kick();
        return;
      }
    }
  }

  private managed(plan: TunnelPlan, name: string): boolean {
    return (
      plan.devices.some((d) => d.name === name) ||
      plan.unwanted.some((d) => d.name === name) ||
      plan.waiting.some((d) => d.name === name)
    );
  }

  // --- one pass

  private async pass(): Promise<TunnelPassResult> {
    const plan = this.plan;
    if (plan === undefined) return { actions: [], waiting: [], failed: [], inSync: false };
    const actions: string[] = [];
    const waiting: TunnelWait[] = [...plan.waiting];
    const failed: TunnelFailure[] = [];
    this.indexes.clear();
    for (const d of plan.devices) {
      try {
        const wait = await this.ensure(d, actions);
        if (wait !== undefined) waiting.push(wait);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        failed.push({ name: d.name, error });
        this.log.warn({ device: d.name, err: error }, 'tunnel device repair failed');
      }
    }
    for (const d of plan.unwanted) {
      try {
        await this.removeUnwanted(d, actions);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        failed.push({ name: d.name, error });
        this.log.warn({ device: d.name, err: error }, 'tunnel device removal failed');
      }
    }
    if (actions.length > 0) this.log.info({ actions }, 'tunnel devices changed');
    return {
      actions,
      waiting,
      failed,
      inSync: failed.length === 0 && waiting.length === plan.waiting.length,
    };
  }

  /** Makes one device as planned; returns why it must wait, if it must. */
  private async ensure(d: DesiredTunnel, actions: string[]): Promise<TunnelWait | undefined> {
    let parent: number | undefined;
    if (d.kind === 'vxlan') {
      const holders = await this.kernel.addresses({ family: d.family });
      parent = holders.find((a) => a.address === d.local)?.index;
      if (parent === undefined)
        return { name: d.name, reason: `the node address ${d.local} is on no interface` };
    }
    let link = await this.kernel.getLink(d.name);
    if (link !== undefined) {
      const why = this.incompatible(d, link, parent);
      if (why !== undefined) {
        await this.kernel.deleteLink(link.index);
        actions.push(`deleted ${d.name}: ${why}`);
        link = undefined;
      }
    }
    if (link === undefined) {
      link = await this.create(d, parent, actions);
    }
    this.indexes.add(link.index);
    const change: { mtu?: number; address?: string } = {};
    if (link.mtu !== d.mtu) {
      change.mtu = d.mtu;
      actions.push(`${d.name}: mtu ${link.mtu ?? '?'} -> ${d.mtu}`);
    }
    if (d.kind === 'vxlan' && link.address !== d.mac) {
      change.address = d.mac;
      actions.push(`${d.name}: mac ${link.address ?? '?'} -> ${d.mac}`);
    }
    if (change.mtu !== undefined || change.address !== undefined)
      await this.kernel.setLink(link.index, change);
    await this.ensureAddress(link, d.kind === 'vxlan' ? d.family : 4, d.address, actions);
    if (!link.up) {
      await this.kernel.setLink(link.index, { up: true });
      actions.push(`${d.name}: up`);
    }
    return undefined;
  }

  /** Why the existing link cannot be made into d in place, or undefined. */
  private incompatible(d: DesiredTunnel, link: LinkInfo, parent: number | undefined): string | undefined {
    if (link.kind !== d.kind) return `kind ${link.kind ?? 'unknown'}, not ${d.kind}`;
    if (d.kind === 'ipip') return undefined;
    const v = link.vxlan;
    if (v === undefined) return 'no VXLAN settings reported';
    if (v.id !== d.vni) return `VNI ${v.id}, not ${d.vni}`;
    if ((v.port ?? 0) !== d.port) return `port ${v.port ?? 'unset'}, not ${d.port}`;
    if (v.local !== d.local) return `local ${v.local ?? 'unset'}, not ${d.local}`;
    if (v.link !== parent) return `parent device #${v.link ?? 'unset'}, not #${parent ?? 'unset'}`;
    if (v.learning !== false) return 'MAC learning on';
    return undefined;
  }

  private async create(d: DesiredTunnel, parent: number | undefined, actions: string[]): Promise<LinkInfo> {
    const spec: LinkSpec =
      d.kind === 'vxlan' ? this.vxlanSpec(d, parent) : { kind: 'ipip', name: d.name, mtu: d.mtu };
    try {
      await this.kernel.createLink(spec);
      actions.push(`created ${d.name}`);
    } catch (e) {
      // loading the ipip module creates tunl0 in every namespace, racing our own create
      if (!(d.kind === 'ipip' && isErrno(e, 'EEXIST'))) {
        if (d.kind === 'ipip' && (isErrno(e, 'ENOTSUP') || isErrno(e, 'EOPNOTSUPP')))
          throw new Error(`the kernel has no ipip support (module ipip missing?): ${(e as Error).message}`, {
            cause: e,
          });
        throw e;
      }
    }
    const link = await this.kernel.getLink(d.name);
    if (link === undefined) throw new Error(`${d.name} is missing right after it was created`);
    if (link.kind !== d.kind)
      throw new Error(`${d.name} was created as ${link.kind ?? 'unknown'}, not ${d.kind}`);
    return link;
  }

  private vxlanSpec(d: DesiredVxlan, parent: number | undefined): LinkSpec {
    return {
      kind: 'vxlan',
      name: d.name,
      mtu: d.mtu,
      address: d.mac,
      vxlan: {
        id: d.vni,
        port: d.port,
        local: d.local,
        learning: false,
        ...(parent !== undefined ? { link: parent } : {}),
      },
    };
  }

  /** Exactly `address`/32 (/128) among the link's addresses of that family. */
  private async ensureAddress(
    link: LinkInfo,
    family: 4 | 6,
    address: string,
    actions: string[],
  ): Promise<void> {
    const len = hostLen(family);
    const have = await this.kernel.addresses({ family, index: link.index });
    let present = false;
    for (const a of have) {
      if (a.address === address && a.prefixLen === len) {
        present = true;
        continue;
      }
      if (family === 6 && isLinkLocal6(a.address)) continue;
      await this.kernel.deleteAddress({
        family,
        index: link.index,
        address: a.address,
        prefixLen: a.prefixLen,
      });
      actions.push(`${link.name}: removed ${a.address}/${a.prefixLen}`);
    }
    if (!present) {
      await this.kernel.addAddress({
        family,
        index: link.index,
        address,
        prefixLen: len,
        // usable at once: duplicate detection cannot work over VXLAN without learning
        ...(family === 6 ? { flags: IFA_F_NODAD } : {}),
      });
      actions.push(`${link.name}: added ${address}/${len}`);
    }
  }

  private async removeUnwanted(d: UnwantedTunnel, actions: string[]): Promise<void> {
    const link = await this.kernel.getLink(d.name);
    if (link === undefined) return;
    if (d.kind === 'vxlan') {
      try {
        await this.kernel.deleteLink(link.index);
      } catch (e) {
        if (!isErrno(e, 'ENODEV')) throw e;
        return;
      }
      const v6 = link.vxlan?.local?.includes(':') === true;
      actions.push(`deleted ${d.name}: no ${v6 ? 'IPv6 ' : ''}pool uses VXLAN`);
      return;
    }
    if (link.kind !== 'ipip') return; // not the ipip module's device: not ours
    for (const a of await this.kernel.addresses({ family: 4, index: link.index })) {
      await this.kernel.deleteAddress({
        family: 4,
        index: link.index,
        address: a.address,
        prefixLen: a.prefixLen,
      });
      actions.push(`${d.name}: removed ${a.address}/${a.prefixLen} (no pool uses IPIP)`);
    }
    if (link.up) {
      await this.kernel.setLink(link.index, { up: false });
      actions.push(`${d.name}: down (no pool uses IPIP)`);
    }
  }
}
