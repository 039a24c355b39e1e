// The node's tunnel addresses, from IPAM (Calico's allocateip, node/pkg/allocateip at
// v3.31.7): an IPIP address for tunl0 (spec.bgp.ipv4IPIPTunnelAddr) while an enabled IPv4
// pool that selects the node has IPIP on, and VXLAN addresses (spec.ipv4VXLANTunnelAddr,
// spec.ipv6VXLANTunnelAddr) while one has VXLAN on; released when no pool needs them any
// more. Each is held under Calico's handle (`ipip-tunnel-addr-<node>`, ...) with attributes
// {node, type}, so a Calico datastore's tunnel addresses carry over, and Calico's older
// forms are repaired as Calico repairs them.
//
// WireGuard addresses are handled as Calico handles them on a node without a WireGuard
// public key (Tabby runs no WireGuard): released, and cleared from spec.wireguard.
import type { Datastore, Ipam, IPPool, Node } from '@tabby/datastore';
import {
  AddressInUseError,
  ConflictError,
  matches,
  NotFoundError,
  parseCidr,
  parseIp,
  parseSelector,
  RetriesExhaustedError,
  tunnelHandle,
  cidrContainsIp,
} from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';

/** Calico's allocation attribute types, in the order allocateip reconciles them (allocateip.go:260). */
export const TUNNEL_ADDRESS_TYPES = [
  'wireguardTunnelAddress',
  'wireguardV6TunnelAddress',
  'ipipTunnelAddress',
  'vxlanTunnelAddress',
  'vxlanV6TunnelAddress',
] as const;
export type TunnelAddressType = (typeof TUNNEL_ADDRESS_TYPES)[number];

/** Calico's handle ID for a node's tunnel address (generateHandleAndAttributes, allocateip.go:449). */
export function tunnelAddressHandle(node: string, type: TunnelAddressType): string {
  switch (type) {
    case 'ipipTunnelAddress':
      return tunnelHandle(node, 'ipip');
    case 'vxlanTunnelAddress':
      return tunnelHandle(node, 'vxlan');
    case 'vxlanV6TunnelAddress':
      return tunnelHandle(node, 'vxlan-v6');
    case 'wireguardTunnelAddress':
      return `wireguard-tunnel-addr-${node}`;
    case 'wireguardV6TunnelAddress':
      return `wireguard-v6-tunnel-addr-${node}`;
  }
}

const familyOf = (t: TunnelAddressType): 4 | 6 =>
  t === 'vxlanV6TunnelAddress' || t === 'wireguardV6TunnelAddress' ? 6 : 4;

function getAddr(node: Node, t: TunnelAddressType): string {
  switch (t) {
    case 'ipipTunnelAddress':
      return node.spec.bgp?.ipv4IPIPTunnelAddr ?? '';
    case 'vxlanTunnelAddress':
      return node.spec.ipv4VXLANTunnelAddr ?? '';
    case 'vxlanV6TunnelAddress':
      return node.spec.ipv6VXLANTunnelAddr ?? '';
    case 'wireguardTunnelAddress':
      return node.spec.wireguard?.interfaceIPv4Address ?? '';
    case 'wireguardV6TunnelAddress':
      return node.spec.wireguard?.interfaceIPv6Address ?? '';
  }
}

/** Sets (or with '' clears) the field; empty bgp / wireguard objects go (allocateip.go:526, 553). */
function setAddr(node: Node, t: TunnelAddressType, addr: string): void {
  const spec = node.spec;
  switch (t) {
    case 'ipipTunnelAddress':
      if (addr !== '') (spec.bgp ??= {}).ipv4IPIPTunnelAddr = addr;
      else if (spec.bgp !== undefined) {
        delete spec.bgp.ipv4IPIPTunnelAddr;
        if (Object.keys(spec.bgp).length === 0) delete spec.bgp;
      }
      return;
    case 'vxlanTunnelAddress':
      if (addr !== '') spec.ipv4VXLANTunnelAddr = addr;
      else delete spec.ipv4VXLANTunnelAddr;
      return;
    case 'vxlanV6TunnelAddress':
      if (addr !== '') spec.ipv6VXLANTunnelAddr = addr;
      else delete spec.ipv6VXLANTunnelAddr;
      return;
    case 'wireguardTunnelAddress':
    case 'wireguardV6TunnelAddress': {
      const f = t === 'wireguardTunnelAddress' ? 'interfaceIPv4Address' : 'interfaceIPv6Address';
      if (addr !== '') (spec.wireguard ??= {})[f] = addr;
      else if (spec.wireguard !== undefined) {
        delete spec.wireguard[f];
        if (Object.keys(spec.wireguard).length === 0) delete spec.wireguard;
      }
      return;
    }
  }
}

/**
 * Calico's determineEnabledPoolCIDRs (allocateip.go:667): the CIDRs of the pools that need
 * this address type on this node, in name order. WireGuard: none, as on a Calico node
 * without a WireGuard public key (allocateip.go:680).
 */
export function enabledPoolCidrs(node: Node, pools: readonly IPPool[], t: TunnelAddressType): string[] {
  if (t === 'wireguardTunnelAddress' || t === 'wireguardV6TunnelAddress') return [];
  const labels = node.metadata.labels ?? {};
  const out: string[] = [];
  for (const p of [...pools].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const c = parseCidr(p.spec.cidr);
    if (c === undefined) continue;
    const uses = p.spec.allowedUses ?? [];
    if (uses.length > 0 && !uses.includes('Tunnel')) continue;
    const sel = p.spec.nodeSelector ?? '';
    try {
      if (sel !== '' && !matches(parseSelector(sel), labels)) continue;
    } catch {
      continue; // allocateip.go:717: a selector that does not parse selects nothing
    }
    if (p.spec.disabled === true || c.family !== familyOf(t)) continue;
    const mode = t === 'ipipTunnelAddress' ? p.spec.ipipMode : p.spec.vxlanMode;
    if (mode === 'Always' || mode === 'CrossSubnet') out.push(p.spec.cidr);
  }
  return out;
}

function inPools(addr: string, cidrs: readonly string[]): boolean {
  const a = parseIp(addr);
  return a !== undefined && cidrs.some((c) => cidrContainsIp(parseCidr(c)!, a));
}

export interface TunnelAddressOptions {
  readonly datastore: Datastore;
  readonly ipam: Ipam;
  readonly nodeName: string;
  readonly log: Logger;
  /** Rounds when the Node changes under the final write. [Default: 10] */
  readonly maxAttempts?: number;
}

export interface TunnelAddresses {
  readonly node: Node;
  readonly ipv4IPIPTunnelAddr: string | undefined;
  readonly ipv4VXLANTunnelAddr: string | undefined;
  readonly ipv6VXLANTunnelAddr: string | undefined;
}

class Reconcile {
  /** Addresses assigned in this round, by type: given back if the round fails (allocateip.go:246). */
  readonly assigned = new Map<TunnelAddressType, string>();

  constructor(
    private readonly ipam: Ipam,
    private readonly node: Node,
    private readonly log: Logger,
  ) {}

  private attrs(t: TunnelAddressType): Record<string, string> {
    return { node: this.node.metadata.name, type: t };
  }

  /** Calico's ensureHostTunnelAddress (allocateip.go:289). */
  async ensure(t: TunnelAddressType, cidrs: readonly string[]): Promise<void> {
    const node = this.node.metadata.name;
    const handle = tunnelAddressHandle(node, t);
    const addr = getAddr(this.node, t);
    let release = false;
    let assign = true;
    if (addr === '') {
      // Defensively release whatever the handle holds: the Node may have lost its reference.
      release = true;
    } else {
      if (parseIp(addr) === undefined)
        throw new Error(`failed to parse the ${t} ${JSON.stringify(addr)} of Node ${node}`);
      const info = await this.ipam.addressInfo(addr);
      if (info === undefined) {
        this.log.info({ type: t, address: addr }, 'current tunnel address is not assigned, assign a new one');
        release = true;
      } else if (info.attrs['type'] === t && info.attrs['node'] === node) {
        if (!inPools(addr, cidrs)) {
          this.log.info(
            { type: t, address: addr },
            'current tunnel address is not in a valid pool, release it and reassign',
          );
          release = true;
        } else {
          this.log.debug({ type: t, address: addr }, 'current tunnel address is still valid');
          assign = false;
        }
      } else if (Object.keys(info.attrs).length === 0) {
        if (info.handle !== undefined) {
          // A workload's address (only they had handles before attributes existed): leave it.
          this.log.info({ type: t, address: addr }, 'current tunnel address is occupied, assign a new one');
        } else if (await this.correctAllocation(t, addr, handle)) {
          return;
        }
      } else {
        this.log.info(
          { type: t, address: addr, owner: info.attrs },
          'current tunnel address is occupied, assign a new one',
        );
      }
    }
    if (release) await this.ipam.releaseByHandle(handle);
    if (assign) await this.assign(t, cidrs, handle);
  }

  /**
   * Calico's correctAllocationWithHandle (allocateip.go:420): an address from before handles
   * and attributes is released and assigned again, with them. False when someone else took
   * it meanwhile (then a new one is assigned).
   */
  private async correctAllocation(t: TunnelAddressType, addr: string, handle: string): Promise<boolean> {
    await this.ipam.releaseIps([addr]);
    try {
      await this.ipam.assignIp({
        ip: addr,
        handleId: handle,
        node: this.node.metadata.name,
        attrs: this.attrs(t),
      });
      this.log.info({ type: t, address: addr }, 'updated tunnel address with allocation attributes');
      return true;
    } catch (e) {
      if (!(e instanceof AddressInUseError)) throw e;
      this.log.warn(
        { type: t, address: addr, err: e },
        'failed to correct missing attributes, will assign a new address',
      );
      return false;
    }
  }

  /** Calico's assignHostTunnelAddr (allocateip.go:471). */
  private async assign(t: TunnelAddressType, cidrs: readonly string[], handle: string): Promise<void> {
    const family = familyOf(t);
    const r = await this.ipam.autoAssign({
      handleId: handle,
      num4: family === 4 ? 1 : 0,
      num6: family === 6 ? 1 : 0,
      node: this.node.metadata.name,
      attrs: this.attrs(t),
      pools: cidrs,
      use: 'Tunnel',
    });
    const got = (family === 4 ? r.ipv4 : r.ipv6)[0];
    if (got === undefined) throw new Error(`IPAM assigned no ${t} to node ${this.node.metadata.name}`);
    setAddr(this.node, t, got.ip);
    this.assigned.set(t, got.ip);
    this.log.info({ type: t, address: got.ip, pool: got.pool }, 'assigned tunnel address to node');
  }

  /** Calico's removeHostTunnelAddr (allocateip.go:553). */
  async remove(t: TunnelAddressType): Promise<void> {
    const node = this.node.metadata.name;
    const handle = tunnelAddressHandle(node, t);
    const addr = getAddr(this.node, t);
    setAddr(this.node, t, '');
    // Calico's ReleaseByHandle says "does not exist" for an unknown handle; ours is
    // idempotent, so look first to know which case this is.
    const held = await this.ipam.ipsByHandle(handle);
    if (held.length > 0) {
      await this.ipam.releaseByHandle(handle);
      this.log.info(
        { type: t, addresses: held.map((h) => h.ip) },
        'released tunnel address: no pool needs it',
      );
      return;
    }
    if (addr === '' || parseIp(addr) === undefined) return;
    // No address under the handle, but the Node names one (allocateip.go:617).
    const info = await this.ipam.addressInfo(addr);
    if (info === undefined) return; // not allocated: nothing to do
    if (Object.keys(info.attrs).length === 0 && info.handle === undefined) {
      // From before handles: ours, release it.
      await this.ipam.releaseIps([addr]);
      this.log.info({ type: t, address: addr }, 'released tunnel address allocated without a handle');
    } else if (info.handle === handle) {
      // The handle object was lost but the allocation names it.
      await this.ipam.releaseIps([addr]);
      this.log.info({ type: t, address: addr }, 'released tunnel address whose handle was missing');
    } else {
      this.log.warn(
        { type: t, address: addr, owner: info.attrs, handle: info.handle },
        'IP address has been reused by something else',
      );
    }
  }

  /** allocateip.go:246: a failed round gives back what it assigned. */
  async undo(): Promise<void> {
    for (const [t, ip] of this.assigned) {
      try {
        await this.ipam.releaseByHandle(tunnelAddressHandle(this.node.metadata.name, t));
      } catch (e) {
        this.log.error({ type: t, address: ip, err: e }, 'error releasing tunnel address on failure');
      }
    }
  }
}

/**
 * Calico's reconcileTunnelAddrs (allocateip.go:227): for each address type, assign or keep
 * the address when a pool needs it, release it when none does, then write the Node if it
 * changed. The Node must exist. A round that loses the Node's compare-and-swap gives back
 * what it assigned and runs again on the Node as it now is.
 */
export async function reconcileTunnelAddresses(opts: TunnelAddressOptions): Promise<TunnelAddresses> {
  const { datastore: ds, nodeName, log } = opts;
  const attempts = opts.maxAttempts ?? 10;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const stored = await ds.get('Node', nodeName);
    if (stored === undefined) throw new NotFoundError({ kind: 'Node', name: nodeName });
    const pools = (await ds.list('IPPool')).items;
    const node = structuredClone(stored);
    const round = new Reconcile(opts.ipam, node, log);
    try {
      for (const t of TUNNEL_ADDRESS_TYPES) {
        const cidrs = enabledPoolCidrs(node, pools, t);
        if (cidrs.length > 0) await round.ensure(t, cidrs);
        else await round.remove(t);
      }
      const written =
        JSON.stringify(node.spec) === JSON.stringify(stored.spec)
          ? stored
          : ((await ds.update(node)) as Node);
      return {
        node: written,
        ipv4IPIPTunnelAddr: written.spec.bgp?.ipv4IPIPTunnelAddr,
        ipv4VXLANTunnelAddr: written.spec.ipv4VXLANTunnelAddr,
        ipv6VXLANTunnelAddr: written.spec.ipv6VXLANTunnelAddr,
      };
    } catch (e) {
      await round.undo();
      if (!(e instanceof ConflictError)) throw e;
      last = e;
      log.info({ node: nodeName, attempt }, 'the Node changed while tunnel addresses were assigned; again');
    }
  }
  throw new RetriesExhaustedError(`writing the tunnel addresses of Node ${nodeName}`, attempts, last);
}
