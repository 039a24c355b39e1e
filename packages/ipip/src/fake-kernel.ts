// An in-memory kernel for the TunnelManager's tests (and anyone composing it): links with
// kind, MTU, MAC, up and VXLAN settings; IPv4/IPv6 addresses; the errors the kernel gives
// (EEXIST, ENODEV, EADDRNOTAVAIL, EOPNOTSUPP for ipip without the module); the ipip module's
// fallback tunl0 that a delete leaves in place; events delivered asynchronously; and faults
// injected on demand.
import type {
  AddressInfo,
  AddressSpec,
  IpVersion,
  LinkChange,
  LinkInfo,
  LinkSpec,
  VxlanSettings,
} from '@tabby/netlink/codec';
import { IFF_UP, NetlinkError } from '@tabby/netlink/codec';
import type { TunnelKernel, TunnelKernelEvent } from './kernel.js';

const ERRNO = { EINTR: 4, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, EOPNOTSUPP: 95, EADDRNOTAVAIL: 99 };
export type FakeTunnelErrno = keyof typeof ERRNO;
export type FakeTunnelOp =
  'getLink' | 'addresses' | 'createLink' | 'setLink' | 'deleteLink' | 'addAddress' | 'deleteAddress';

interface LinkRecord {
  index: number;
  name: string;
  kind: string;
  mtu: number;
  address: string | undefined;
  up: boolean;
  vxlan: VxlanSettings | undefined;
  /** The ipip module's tunl0: a delete leaves it in place (ip_tunnel_dellink). */
  fallback: boolean;
}

export interface HandLink {
  readonly name: string;
  readonly kind: string;
  readonly mtu?: number;
  readonly address?: string;
  readonly up?: boolean;
  readonly vxlan?: VxlanSettings;
}

export class FakeTunnelKernel implements TunnelKernel {
  private readonly linkMap = new Map<number, LinkRecord>();
  private addressList: AddressInfo[] = [];
  private readonly listeners = new Set<(e: TunnelKernelEvent) => void>();
  private nextIndex = 2;
  private macSeq = 0;

  /** False: creating an ipip link fails as on a kernel without the module. */
  ipipSupported = true;
  /** Faults: the next `times` calls of `op` fail with `errno`. */
  readonly faults: { op: FakeTunnelOp; errno: FakeTunnelErrno; times: number }[] = [];
  /**
   * Every write that reached the kernel, as text ("createLink vxlan.calico", "setLink
   * vxlan.calico mtu=1450"); injected refusals as "addAddress (refused: EBUSY, injected)".
   */
  readonly writes: string[] = [];
  /** While true, events are not delivered; one overrun is delivered instead. */
  dropEvents = false;
  private overrunPending = false;

  constructor() {
    this.linkMap.set(1, {
      index: 1,
      name: 'lo',
      kind: 'loopback',
      mtu: 65536,
      address: '00:00:00:00:00:00',
      up: true,
      vxlan: undefined,
      fallback: false,
    });
  }

  // --- the TunnelKernel interface

  getLink(name: string): Promise<LinkInfo | undefined> {
    return this.call('getLink', () => this.link(name));
  }

  addresses(filter: { readonly family?: IpVersion; readonly index?: number }): Promise<AddressInfo[]> {
    return this.call('addresses', () =>
      this.addressList.filter(
        (a) =>
          (filter.family === undefined || a.family === filter.family) &&
          (filter.index === undefined || a.index === filter.index),
      ),
    );
  }

  createLink(spec: LinkSpec): Promise<void> {
    return this.call('createLink', () => {
      this.writes.push(`createLink ${spec.name}`);
      if (spec.kind === 'ipip' && !this.ipipSupported)
        throw new NetlinkError(ERRNO.EOPNOTSUPP, `RTM_NEWLINK ipip ${spec.name}`, 'Unknown device type');
      if (this.byName(spec.name) !== undefined)
        throw new NetlinkError(ERRNO.EEXIST, `RTM_NEWLINK ${spec.kind} ${spec.name}`, 'File exists');
      this.insert({
        name: spec.name,
        kind: spec.kind,
        ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
        ...(spec.address !== undefined ? { address: spec.address } : {}),
        ...(spec.up !== undefined ? { up: spec.up } : {}),
        ...(spec.kind === 'vxlan' ? { vxlan: spec.vxlan } : {}),
      });
    });
  }

  setLink(index: number, change: LinkChange): Promise<void> {
    return this.call('setLink', () => {
      const l = this.linkMap.get(index);
      const parts = Object.entries(change).map(([k, v]) => `${k}=${String(v)}`);
      this.writes.push(`setLink ${l?.name ?? `#${index}`} ${parts.join(' ')}`);
      if (l === undefined)
        throw new NetlinkError(ERRNO.ENODEV, `RTM_NEWLINK (set) ${index}`, 'No such device');
      if (change.mtu !== undefined) l.mtu = change.mtu;
      if (change.address !== undefined) l.address = change.address.toLowerCase();
      if (change.up !== undefined) l.up = change.up;
      this.emit({ kind: 'link', op: 'new', link: this.info(l) });
    });
  }

  deleteLink(index: number): Promise<void> {
    return this.call('deleteLink', () => {
      const l = this.linkMap.get(index);
      this.writes.push(`deleteLink ${l?.name ?? `#${index}`}`);
      if (l === undefined) throw new NetlinkError(ERRNO.ENODEV, `RTM_DELLINK ${index}`, 'No such device');
      if (l.fallback) return; // the kernel answers 0 and keeps it
      this.remove(l);
    });
  }

  addAddress(a: AddressSpec): Promise<void> {
    return this.call('addAddress', () => {
      this.writes.push(
        `addAddress ${this.linkMap.get(a.index)?.name ?? `#${a.index}`} ${a.address}/${a.prefixLen}`,
      );
      if (!this.linkMap.has(a.index)) throw new NetlinkError(ERRNO.ENODEV, 'RTM_NEWADDR', 'No such device');
      if (
        this.addressList.some(
          (x) => x.index === a.index && x.address === a.address && x.prefixLen === a.prefixLen,
        )
      )
        throw new NetlinkError(ERRNO.EEXIST, `RTM_NEWADDR ${a.address}/${a.prefixLen}`, 'File exists');
      this.insertAddress(a.index, a.address, a.prefixLen, a.family);
    });
  }

  deleteAddress(a: AddressSpec): Promise<void> {
    return this.call('deleteAddress', () => {
      this.writes.push(
        `deleteAddress ${this.linkMap.get(a.index)?.name ?? `#${a.index}`} ${a.address}/${a.prefixLen}`,
      );
      const had = this.addressList.find(
        (x) => x.index === a.index && x.address === a.address && x.prefixLen === a.prefixLen,
      );
      if (had === undefined)
        throw new NetlinkError(
          ERRNO.EADDRNOTAVAIL,
          `RTM_DELADDR ${a.address}/${a.prefixLen}`,
          'Cannot assign requested address',
        );
      this.addressList = this.addressList.filter((x) => x !== had);
      this.emit({ kind: 'address', op: 'del', address: had });
    });
  }

  watch(onEvent: (e: TunnelKernelEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  // --- the test's hands on the kernel (what `ip` would do)

  /** `ip link add`, or the ipip module creating tunl0 (fallback: true). */
  addLinkByHand(spec: HandLink, fallback = false): LinkInfo {
    if (this.byName(spec.name) !== undefined) throw new Error(`link ${spec.name} exists`);
    return this.info(this.insert(spec, fallback));
  }

  setLinkByHand(name: string, change: { mtu?: number; address?: string; up?: boolean }): void {
    const l = this.byName(name);
    if (l === undefined) throw new Error(`no link ${name}`);
    if (change.mtu !== undefined) l.mtu = change.mtu;
    if (change.address !== undefined) l.address = change.address;
    if (change.up !== undefined) l.up = change.up;
    this.emit({ kind: 'link', op: 'new', link: this.info(l) });
  }

  deleteLinkByHand(name: string): void {
    const l = this.byName(name);
    if (l === undefined) throw new Error(`no link ${name}`);
    this.remove(l);
  }

  addAddressByHand(name: string, cidr: string): void {
    const l = this.byName(name);
    if (l === undefined) throw new Error(`no link ${name}`);
    const [address, len] = cidr.split('/');
    const family = address!.includes(':') ? 6 : 4;
    this.insertAddress(l.index, address!, Number(len ?? (family === 4 ? 32 : 128)), family);
  }

  deleteAddressByHand(name: string, cidr: string): void {
    const l = this.byName(name);
    const [address, len] = cidr.split('/');
    const had = this.addressList.find(
      (x) => x.index === l?.index && x.address === address && x.prefixLen === Number(len),
    );
    if (had === undefined) throw new Error(`no address ${cidr} on ${name}`);
    this.addressList = this.addressList.filter((x) => x !== had);
    this.emit({ kind: 'address', op: 'del', address: had });
  }

  /** The link now (synchronously), or undefined. */
  link(name: string): LinkInfo | undefined {
    const l = this.byName(name);
    return l === undefined ? undefined : this.info(l);
  }

  /** "a.b.c.d/len" of the link's addresses, sorted. */
  addressesOf(name: string): string[] {
    const l = this.byName(name);
    return this.addressList
      .filter((a) => a.index === l?.index)
      .map((a) => `${a.address}/${a.prefixLen}`)
      .sort();
  }

  takeWrites(): string[] {
    return this.writes.splice(0);
  }

  // --- internals

  private call<T>(op: FakeTunnelOp, fn: () => T): Promise<T> {
    return Promise.resolve().then(() => {
      const i = this.faults.findIndex((f) => f.op === op && f.times > 0);
      if (i >= 0) {
        const f = this.faults[i]!;
        f.times--;
        if (f.times <= 0) this.faults.splice(i, 1);
        if (op !== 'getLink' && op !== 'addresses') this.writes.push(`${op} (refused: ${f.errno}, injected)`);
        throw new NetlinkError(ERRNO[f.errno], `${op} (injected)`, 'injected');
      }
      return fn();
    });
  }

  private byName(name: string): LinkRecord | undefined {
    for (const l of this.linkMap.values()) if (l.name === name) return l;
    return undefined;
  }

  private insert(spec: HandLink, fallback = false): LinkRecord {
    const defaultMac = (): string => `02:00:00:00:00:${(++this.macSeq & 0xff).toString(16).padStart(2, '0')}`;
    const l: LinkRecord = {
      index: this.nextIndex++,
      name: spec.name,
      kind: spec.kind,
      mtu: spec.mtu ?? (spec.kind === 'ipip' ? 1480 : spec.kind === 'vxlan' ? 1450 : 1500),
      address: spec.kind === 'ipip' ? undefined : (spec.address?.toLowerCase() ?? defaultMac()),
      up: spec.up ?? false,
      vxlan: spec.vxlan,
      fallback: fallback || (spec.kind === 'ipip' && spec.name === 'tunl0'),
    };
    this.linkMap.set(l.index, l);
    this.emit({ kind: 'link', op: 'new', link: this.info(l) });
    return l;
  }

  private remove(l: LinkRecord): void {
    this.linkMap.delete(l.index);
    const gone = this.addressList.filter((a) => a.index === l.index);
    this.addressList = this.addressList.filter((a) => a.index !== l.index);
    for (const a of gone) this.emit({ kind: 'address', op: 'del', address: a });
    this.emit({ kind: 'link', op: 'del', link: this.info(l) });
  }

  private insertAddress(index: number, address: string, prefixLen: number, family: IpVersion): void {
    const a: AddressInfo = { family, index, address, prefixLen, scope: 0, flags: 0 };
    this.addressList.push(a);
    this.emit({ kind: 'address', op: 'new', address: a });
  }

  private info(l: LinkRecord): LinkInfo {
    const out: { -readonly [K in keyof LinkInfo]: LinkInfo[K] } = {
      index: l.index,
      name: l.name,
      flags: l.up ? IFF_UP : 0,
      up: l.up,
      mtu: l.mtu,
      kind: l.kind,
    };
    if (l.address !== undefined) out.address = l.address;
    if (l.vxlan !== undefined) out.vxlan = { ...l.vxlan };
    return out;
  }

  private emit(e: TunnelKernelEvent): void {
    if (this.dropEvents) {
      this.overrunPending = true;
      return;
    }
    const deliver: TunnelKernelEvent[] = [];
    if (this.overrunPending) {
      this.overrunPending = false;
      deliver.push({ kind: 'overrun', error: new NetlinkError(105, 'monitor', 'events lost (injected)') });
    }
    deliver.push(e);
    setImmediate(() => {
      for (const ev of deliver) for (const l of this.listeners) l(ev);
    });
  }
}
