// Tabby's IPAM: Calico's algorithm (libcalico-go lib/ipam, v3.31.7) over any Backend.
//
// State lives in three kinds: IPAMBlock (a blockSize-sized piece of a pool, with one slot
// per address), BlockAffinity (a node's claim on a block: pending → confirmed →
// pendingDeletion) and IPAMHandle (per owner, how many addresses it holds in which block).
// Every write is a compare-and-swap on the resourceVersion just read; a ConflictError (or an
// UnavailableError, which the backend raises before anything was written) means "read again
// and retry", with jittered backoff and a bounded number of attempts. Two nodes can never
// hand out one address because an address is taken only by a CAS write of the one block
// object that holds it.
//
// Write orders, and why a crash between any two steps is safe:
// - Claiming a block: BlockAffinity created `pending`, then the IPAMBlock created with the
//   node's affinity, then the BlockAffinity `confirmed`. A crash after the first leaves a
//   pending affinity without a block: the node's next request adopts it (creates the block),
//   or, if another node took the block meanwhile, deletes it. A crash after the second leaves
//   a pending affinity whose block names the node: the next request confirms it.
// - Assigning addresses: the IPAMHandle is incremented first, then the block written; if the
//   block write fails, the handle is decremented again. A crash between the two leaves a
//   handle that counts addresses the block never got: harmless, since releaseByHandle and
//   `ipam check` reconcile handles against blocks. The other order could leave an address
//   that no handle lists, which releaseByHandle would never find.
// - Releasing addresses: the block first, then the handle decremented: the same harmless
//   over-count if a crash falls between.
// - Releasing an affinity: BlockAffinity marked `pendingDeletion`, then the block deleted
//   (empty) or its affinity removed (in use), then the BlockAffinity deleted. A crash leaves
//   a pendingDeletion affinity that the node's next request confirms again (as Calico) or
//   the next release finishes.
import type { AnyResource, Backend, ListResult } from '../store/backend.js';
import { AlreadyExistsError, ConflictError, NotFoundError, UnavailableError } from '../store/errors.js';
import type {
  BlockAffinity,
  BlockAffinitySpec,
  IPAMBlock,
  IPAMConfig,
  IPAMHandle,
} from '../resources/ipam.js';
import { IPAMBlockKind, IPAM_CONFIG_NAME, affinityName, blockName } from '../resources/ipam.js';
import type { Node } from '../resources/node.js';
import { validateSpec } from '../resources/define.js';
import type { Kind } from '../resources/kinds.js';
import type { ResourceKey } from '../resources/meta.js';
import { API_VERSION, formatKey } from '../resources/meta.js';
import type { Address, Cidr, Family } from '../schema/ip.js';
import { cidrContainsIp, cidrWithin, formatCidr, formatIp, parseCidr, parseIp } from '../schema/ip.js';
import {
  addressOf,
  affinityNode,
  allocate,
  assignOrdinal,
  blockCidr,
  freeCount,
  hostAffinity,
  isEmpty,
  newBlockSpec,
  ordinalOf,
  ordinalsOfHandle,
  ownerOf,
  releaseHandle,
  releaseOrdinals,
} from './block.js';
import {
  AddressInUseError,
  AddressNotInPoolError,
  AffinityMismatchError,
  InvalidRequestError,
  MaxBlocksReachedError,
  NoEligiblePoolError,
  NodeNotFoundError,
  PoolExhaustedError,
  RetriesExhaustedError,
} from './errors.js';
import type { Pool } from './pools.js';
import type { CheckReport, Utilization } from './report.js';
import { checkIpam, loadSnapshot, utilization } from './report.js';
import {
  blockFor,
  blocksFrom,
  namespaceSelecting,
  poolForAddress,
  selectsNamespace,
  selectsNode,
  toPools,
} from './pools.js';

export type IpamUse = 'Workload' | 'Tunnel';
export type TunnelKind = 'ipip' | 'vxlan' | 'vxlan-v6';

export interface IpamClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export type IpamLog = (level: 'debug' | 'info' | 'warn', msg: string) => void;

export interface IpamOptions {
  readonly backend: Backend;
  readonly clock?: IpamClock;
  /** Uniform in [0, 1): backoff jitter and the order borrowed blocks are tried in. */
  readonly random?: () => number;
  readonly log?: IpamLog;
  /** Attempts per compare-and-swap step before RetriesExhaustedError. [Default: 30] */
  readonly maxAttempts?: number;
  /** Backoff before attempt n: up to min(maxMs, baseMs * 2^(n-1)), half of it jitter. [Default: 2, 250] */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

export interface Assigned {
  readonly ip: string;
  readonly block: string;
  readonly pool: string;
}

export interface AutoAssignRequest {
  readonly handleId: string;
  readonly num4: number;
  readonly num6: number;
  readonly node: string;
  /** Stored with the allocation (Calico: namespace, pod, timestamp); `node` is added. */
  readonly attrs?: Readonly<Record<string, string>>;
  readonly namespace?: { readonly labels?: Readonly<Record<string, string>> };
  /**
   * The pod namespace's labels, fetched only when needed: called (once) when `namespace` is
   * not given and a pool that could otherwise serve the request has a namespaceSelector, with
   * those pools' names. So a caller pays for a Kubernetes API read only where some pool
   * selects by namespace. Its error fails the request.
   */
  readonly namespaceLabels?: (pools: readonly string[]) => Promise<Readonly<Record<string, string>>>;
  /** Pool CIDRs to use (either family); selectors are then ignored, as in Calico. */
  readonly pools?: readonly string[];
  readonly use?: IpamUse;
}

export interface AutoAssignResult {
  readonly ipv4: Assigned[];
  readonly ipv6: Assigned[];
}

export interface AssignIpRequest {
  readonly ip: string;
  readonly handleId: string;
  readonly node: string;
  readonly attrs?: Readonly<Record<string, string>>;
}

/** IPAMConfig with defaults applied (no object: Calico's defaults). */
export interface EffectiveIpamConfig {
  readonly strictAffinity: boolean;
  readonly autoAllocateBlocks: boolean;
  /** 0: no limit. */
  readonly maxBlocksPerHost: number;
}

const TUNNEL_ATTR: Record<TunnelKind, string> = {
  ipip: 'ipipTunnelAddress',
  vxlan: 'vxlanTunnelAddress',
  'vxlan-v6': 'vxlanV6TunnelAddress',
};

/** Calico's handle ID for a node's tunnel address. */
export function tunnelHandle(node: string, kind: TunnelKind): string {
  return `${kind}-tunnel-addr-${node}`;
}

/** The CAS step should run again: someone else changed what it read. */
const RETRY = Symbol('retry');
type Retry = typeof RETRY;

/** The block named by an affinity is another node's: the affinity was deleted. */
class StaleAffinity extends Error {}
/** Another node created the block first: our pending affinity was deleted. */
class BlockTaken extends Error {}

interface FamilyRequest {
  readonly family: Family;
  readonly num: number;
  readonly handle: string;
  readonly node: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly attrs: Record<string, string>;
  readonly namespace: Readonly<Record<string, string>> | undefined;
  readonly requested: readonly Cidr[];
  readonly use: IpamUse;
  readonly cfg: EffectiveIpamConfig;
  readonly pools: readonly Pool[];
}

function resource<K extends Kind>(kind: K, name: string, spec: unknown): AnyResource {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec };
}

const byCidr = (a: Cidr, b: Cidr): number =>
  a.family !== b.family
    ? a.family - b.family
    : a.value < b.value
      ? -1
      : a.value > b.value
        ? 1
        : a.len - b.len;

export class Ipam {
  readonly backend: Backend;
  private readonly clock: IpamClock;
  private readonly random: () => number;
  private readonly log: IpamLog;
  private readonly maxAttempts: number;
  private readonly backoffCfg: { readonly baseMs: number; readonly maxMs: number };

  constructor(opts: IpamOptions) {
    this.backend = opts.backend;
    this.clock = opts.clock ?? {
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    };
    this.random = opts.random ?? Math.random;
    this.log = opts.log ?? (() => {});
    this.maxAttempts = opts.maxAttempts ?? 30;
    this.backoffCfg = opts.backoff ?? { baseMs: 2, maxMs: 250 };
  }

  // ---------------------------------------------------------------- reads

  async config(): Promise<EffectiveIpamConfig> {
    const o = (await this.get({ kind: 'IPAMConfig', name: IPAM_CONFIG_NAME })) as IPAMConfig | undefined;
    return {
      strictAffinity: o?.spec.strictAffinity ?? false,
      autoAllocateBlocks: o?.spec.autoAllocateBlocks ?? true,
      maxBlocksPerHost: o?.spec.maxBlocksPerHost ?? 0,
    };
  }

  /** Every valid pool (enabled or not), sorted by name. */
  async pools(): Promise<Pool[]> {
    const { items } = await this.list('IPPool');
    return toPools(items, (m) => this.log('warn', m));
  }

  private async nodeLabels(name: string): Promise<Record<string, string>> {
    const n = (await this.get({ kind: 'Node', name })) as Node | undefined;
    if (n === undefined) throw new NodeNotFoundError(name);
    return n.metadata.labels ?? {};
  }

  private async readBlock(cidr: Cidr): Promise<IPAMBlock | undefined> {
    const b = (await this.get({ kind: 'IPAMBlock', name: blockName(formatCidr(cidr)) })) as
      IPAMBlock | undefined;
    if (b !== undefined) this.checkBlock(b);
    return b;
  }

  private checkBlock(b: IPAMBlock): void {
    const issues = validateSpec(IPAMBlockKind, b);
    if (issues.length > 0)
      throw new Error(
        `IPAMBlock ${b.metadata.name} is corrupt, IPAM will not touch it: ` +
          issues.map((i) => `${i.path}: ${i.reason}`).join('; '),
      );
  }

  private async listBlocks(): Promise<IPAMBlock[]> {
    const { items } = await this.list('IPAMBlock');
    const out: IPAMBlock[] = [];
    for (const b of items as IPAMBlock[]) {
      if (validateSpec(IPAMBlockKind, b).length > 0 || parseCidr(b.spec.cidr) === undefined) {
        this.log('warn', `IPAMBlock ${b.metadata.name} is corrupt and skipped`);
        continue;
      }
      out.push(b);
    }
    return out;
  }

  private async getAffinity(node: string, cidr: Cidr): Promise<BlockAffinity | undefined> {
    return (await this.get({ kind: 'BlockAffinity', name: affinityName(node, formatCidr(cidr)) })) as
      BlockAffinity | undefined;
  }

  /** The node's BlockAffinities (any state), optionally of one family, in address order. */
  private async affinitiesOf(node: string, family?: Family): Promise<{ aff: BlockAffinity; cidr: Cidr }[]> {
    const { items } = await this.list('BlockAffinity');
    const out: { aff: BlockAffinity; cidr: Cidr }[] = [];
    for (const a of items as BlockAffinity[]) {
      if (a.spec.node !== node || (a.spec.type ?? 'host') !== 'host') continue;
      const c = parseCidr(a.spec.cidr);
      if (c === undefined || (family !== undefined && c.family !== family)) continue;
      out.push({ aff: a, cidr: { family: c.family, value: c.value, len: c.len } });
    }
    return out.sort((x, y) => byCidr(x.cidr, y.cidr));
  }

  private async getHandle(handle: string): Promise<IPAMHandle | undefined> {
    return (await this.get({ kind: 'IPAMHandle', name: handle })) as IPAMHandle | undefined;
  }

  // ---------------------------------------------------------------- retry machinery

  /** Reads ride out a briefly unavailable backend like writes do. */
  private get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    return this.attempt(`reading ${formatKey(key)}`, () => this.backend.get(key));
  }

  private list(kind: Kind): Promise<ListResult> {
    return this.attempt(`listing ${kind}`, () => this.backend.list(kind));
  }

  private async backoff(attempt: number): Promise<void> {
    const cap = Math.min(this.backoffCfg.maxMs, this.backoffCfg.baseMs * 2 ** (attempt - 1));
    await this.clock.sleep(cap / 2 + (this.random() * cap) / 2);
  }

  /**
   * Runs one read-modify-CAS step until it returns something other than RETRY. Lost races
   * and unavailability are retried with backoff; any other error ends it at once.
   */
  private async attempt<T>(what: string, step: () => Promise<T | Retry>): Promise<T> {
    let last: unknown = undefined;
    for (let i = 0; i < this.maxAttempts; i++) {
      if (i > 0) await this.backoff(i);
      try {
        const r = await step();
        if (r !== RETRY) return r;
        last = new Error('raced with another writer');
      } catch (e) {
        // A write that finds its object gone (NotFound) or already there (AlreadyExists)
        // lost a race just like a CAS conflict: read again.
        if (
          !(e instanceof ConflictError) &&
          !(e instanceof UnavailableError) &&
          !(e instanceof NotFoundError) &&
          !(e instanceof AlreadyExistsError)
        )
          throw e;
        last = e;
        this.log('debug', `${what}: ${e.message}; retrying`);
      }
    }
    throw new RetriesExhaustedError(what, this.maxAttempts, last);
  }

  /** Deletes with CAS; a missing object counts as deleted. */
  private async deleteIfSame(o: AnyResource): Promise<void> {
    try {
      await this.backend.delete(
        { kind: o.kind, name: o.metadata.name },
        o.metadata.resourceVersion === undefined ? {} : { resourceVersion: o.metadata.resourceVersion },
      );
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }

  private writeBlock(b: IPAMBlock): Promise<IPAMBlock> {
    b.spec.sequenceNumber = (b.spec.sequenceNumber ?? 0) + 1;
    return this.backend.update(b) as Promise<IPAMBlock>;
  }

  // ---------------------------------------------------------------- handles

  private async incrementHandle(handle: string, block: string, n: number): Promise<void> {
    await this.attempt(`IPAMHandle ${handle}`, async () => {
      const h = await this.getHandle(handle);
      if (h === undefined) {
        try {
          await this.backend.create(
            resource('IPAMHandle', handle, { handleID: handle, block: { [block]: n } }),
          );
        } catch (e) {
          if (e instanceof AlreadyExistsError) return RETRY;
          throw e;
        }
        return undefined;
      }
      h.spec.block[block] = (h.spec.block[block] ?? 0) + n;
      await this.backend.update(h);
      return undefined;
    });
  }

  private async decrementHandle(handle: string, block: string, n: number): Promise<void> {
    await this.attempt(`IPAMHandle ${handle}`, async () => {
      const h = await this.getHandle(handle);
      if (h === undefined) {
        this.log('warn', `IPAMHandle ${handle} is missing; it should count ${n} in ${block}`);
        return undefined;
      }
      const left = (h.spec.block[block] ?? 0) - n;
      if (left < 0) this.log('warn', `IPAMHandle ${handle} counted fewer than ${n} in ${block}`);
      if (left > 0) h.spec.block[block] = left;
      else delete h.spec.block[block];
      if (Object.keys(h.spec.block).length === 0) await this.deleteIfSame(h);
      else await this.backend.update(h);
      return undefined;
    });
  }

  /** Undo of an increment after a failed block write; its failure must not hide the first. */
  private async decrementHandleQuiet(handle: string, block: string, n: number): Promise<void> {
    try {
      await this.decrementHandle(handle, block, n);
    } catch (e) {
      this.log(
        'warn',
        `IPAMHandle ${handle} may over-count ${block} by ${n} (releaseByHandle or ipam check repairs it): ` +
          (e instanceof Error ? e.message : String(e)),
      );
    }
  }

  /**
   * Writes a block that now holds `n` more addresses of `handle`: handle first, then the
   * block (see the top of this file for why), undoing the handle if the block write fails.
   */
  private async writeWithHandle(handle: string, b: IPAMBlock, n: number): Promise<void> {
    await this.incrementHandle(handle, b.spec.cidr, n);
    try {
      await this.writeBlock(b);
    } catch (e) {
      await this.decrementHandleQuiet(handle, b.spec.cidr, n);
      throw e;
    }
  }

  /**
   * Drops the handle's entries for blocks that no longer hold any of its addresses, and the
   * handle itself once it lists none: what makes releaseByHandle idempotent and repairs
   * over-counts left by a crash.
   */
  private async reconcileHandle(handle: string): Promise<void> {
    await this.attempt(`IPAMHandle ${handle}`, async () => {
      const h = await this.getHandle(handle);
      if (h === undefined) return undefined;
      let changed = false;
      for (const cidrText of Object.keys(h.spec.block)) {
        const c = parseCidr(cidrText);
        const b = c === undefined ? undefined : await this.readBlock(c);
        if (b === undefined || ordinalsOfHandle(b.spec, handle).length === 0) {
          delete h.spec.block[cidrText];
          changed = true;
        }
      }
      if (Object.keys(h.spec.block).length === 0) await this.deleteIfSame(h);
      else if (changed) await this.backend.update(h);
      return undefined;
    });
  }

  // ---------------------------------------------------------------- affinities and claims

  private async pendingAffinity(node: string, cidr: Cidr): Promise<BlockAffinity> {
    const text = formatCidr(cidr);
    const spec: BlockAffinitySpec = { state: 'pending', node, type: 'host', cidr: text, deleted: 'false' };
    try {
      return (await this.backend.create(
        resource('BlockAffinity', affinityName(node, text), spec),
      )) as BlockAffinity;
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
    }
    const cur = await this.getAffinity(node, cidr);
    if (cur === undefined)
      throw new ConflictError({ kind: 'BlockAffinity', name: affinityName(node, text) }, undefined);
    if (cur.spec.state === 'confirmed') return cur;
    cur.spec.state = 'pending';
    return (await this.backend.update(cur)) as BlockAffinity;
  }

  private async confirmAffinity(aff: BlockAffinity, node: string, cidr: Cidr): Promise<void> {
    aff.spec.state = 'confirmed';
    try {
      await this.backend.update(aff);
    } catch (e) {
      const cur = await this.getAffinity(node, cidr);
      if (cur?.spec.state === 'confirmed') return;
      if (cur === undefined && e instanceof NotFoundError) {
        // Deleted under us (a concurrent release); the block names this node, so the
        // affinity is recreated rather than left missing.
        const spec: BlockAffinitySpec = { ...aff.spec, state: 'confirmed' };
        await this.backend.create(resource('BlockAffinity', aff.metadata.name, spec));
        return;
      }
      throw e;
    }
  }

  /** Creates the block for a pending affinity, or finds it already ours; throws BlockTaken. */
  private async claimAffineBlock(aff: BlockAffinity, node: string, cidr: Cidr): Promise<IPAMBlock> {
    const now = this.clock.now();
    const spec = newBlockSpec(cidr, hostAffinity(node), new Date(now).toISOString(), now * 1000);
    let blk: IPAMBlock;
    try {
      blk = (await this.backend.create(resource('IPAMBlock', blockName(spec.cidr), spec))) as IPAMBlock;
      this.log('info', `node ${node} claimed block ${spec.cidr}`);
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
      const cur = await this.readBlock(cidr);
      if (cur === undefined)
        throw new ConflictError({ kind: 'IPAMBlock', name: blockName(spec.cidr) }, undefined);
      if (cur.spec.affinity !== hostAffinity(node)) {
        await this.deleteIfSame(aff);
        throw new BlockTaken();
      }
      blk = cur;
    }
    await this.confirmAffinity(aff, node, cidr);
    return blk;
  }

  /**
   * The block an affinity names, creating it if missing (adopting a pending claim left by a
   * crash), confirming the affinity if needed; deletes a stale affinity (StaleAffinity).
   */
  private async blockFromAffinity(aff: BlockAffinity, node: string, cidr: Cidr): Promise<IPAMBlock> {
    const blk = await this.readBlock(cidr);
    if (blk === undefined) {
      let pending = aff;
      if (aff.spec.state !== 'pending') {
        aff.spec.state = 'pending';
        pending = (await this.backend.update(aff)) as BlockAffinity;
      }
      return this.claimAffineBlock(pending, node, cidr);
    }
    if (blk.spec.affinity !== hostAffinity(node)) {
      this.log(
        'warn',
        `BlockAffinity ${aff.metadata.name} is stale (block is ${blk.spec.affinity ?? 'unowned'}); deleting it`,
      );
      await this.deleteIfSame(aff);
      throw new StaleAffinity();
    }
    if (aff.spec.state !== 'confirmed') {
      // pending (a claim cut short) or pendingDeletion (a release cut short): take it back.
      aff.spec.state = 'pending';
      const pending = (await this.backend.update(aff)) as BlockAffinity;
      // A new block revision makes any process still working from the old one fail its CAS.
      const written = await this.writeBlock(blk);
      await this.confirmAffinity(pending, node, cidr);
      return written;
    }
    return blk;
  }

  /** A block to claim: one no one has created, or one of ours with room (Calico's findUsableBlock). */
  private async findUsableBlock(node: string, pools: readonly Pool[]): Promise<Cidr | undefined> {
    const exists = new Map<string, IPAMBlock>();
    for (const b of await this.listBlocks()) {
      const c = parseCidr(b.spec.cidr);
      if (c !== undefined) exists.set(formatCidr(c), b);
    }
    const ours = hostAffinity(node);
    for (const p of pools) {
      for (const c of blocksFrom(p, node, this.random)) {
        const b = exists.get(formatCidr(c));
        if (b === undefined || (b.spec.affinity === ours && freeCount(b.spec) > 0)) return c;
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- auto-assign

  async autoAssign(req: AutoAssignRequest): Promise<AutoAssignResult> {
    for (const [k, v] of [
      ['num4', req.num4],
      ['num6', req.num6],
    ] as const)
      if (!Number.isInteger(v) || v < 0)
        throw new InvalidRequestError(`${k} must be a whole number, not ${v}`);
    if (req.handleId === '') throw new InvalidRequestError('handleId must not be empty');
    if (req.node === '') throw new InvalidRequestError('node must not be empty');
    const requested: Cidr[] = [];
    for (const text of req.pools ?? []) {
      const c = parseCidr(text);
      if (c === undefined)
        throw new InvalidRequestError(`requested pool ${JSON.stringify(text)} is not a CIDR`);
      requested.push({ family: c.family, value: c.value, len: c.len });
    }
    const ipv4: Assigned[] = [];
    const ipv6: Assigned[] = [];
    if (req.num4 === 0 && req.num6 === 0) return { ipv4, ipv6 };
    const labels = await this.nodeLabels(req.node);
    const [cfg, pools] = await Promise.all([this.config(), this.pools()]);
    const use = req.use ?? 'Workload';
    let namespace = req.namespace === undefined ? undefined : (req.namespace.labels ?? {});
    if (namespace === undefined && req.namespaceLabels !== undefined) {
      // Families whose request names pools ignore selectors (Calico), so need no labels.
      const families = ([4, 6] as const).filter(
        (f) => (f === 4 ? req.num4 : req.num6) > 0 && !requested.some((c) => c.family === f),
      );
      const selecting = namespaceSelecting(pools, families, labels, use);
      if (selecting.length > 0) namespace = await req.namespaceLabels(selecting);
    }
    const base = {
      handle: req.handleId,
      node: req.node,
      labels,
      attrs: { node: req.node, ...(req.attrs ?? {}) },
      namespace,
      use,
      cfg,
      pools,
    };
    try {
      if (req.num4 > 0)
        await this.assignFamily(
          { ...base, family: 4, num: req.num4, requested: requested.filter((c) => c.family === 4) },
          ipv4,
        );
      if (req.num6 > 0)
        await this.assignFamily(
          { ...base, family: 6, num: req.num6, requested: requested.filter((c) => c.family === 6) },
          ipv6,
        );
    } catch (e) {
      // All or nothing: a caller that sees an error holds no new address.
      const got = [...ipv4, ...ipv6].map((a) => a.ip);
      if (got.length > 0) {
        try {
          await this.releaseIps(got);
        } catch (e2) {
          this.log(
            'warn',
            `could not give back ${got.join(', ')} after a failed assignment (release handle ${req.handleId}): ` +
              (e2 instanceof Error ? e2.message : String(e2)),
          );
        }
      }
      throw e;
    }
    return { ipv4, ipv6 };
  }

  /** Pools of the family that may serve the request (Calico's determinePools + use filter). */
  private eligiblePools(r: FamilyRequest): { eligible: Pool[]; selecting: Pool[] } {
    const fam = r.pools.filter((p) => p.cidr.family === r.family);
    const skipped: string[] = [];
    const selecting: Pool[] = [];
    if (r.requested.length > 0) {
      for (const c of r.requested) {
        const text = formatCidr(c);
        const p = fam.find((q) => q.cidrText === text);
        if (p === undefined || p.disabled)
          throw new NoEligiblePoolError(r.node, r.family, r.use, [
            `requested pool ${text} does not exist or is disabled`,
          ]);
        selecting.push(p);
      }
    } else {
      for (const p of fam) {
        const label = `${p.name} (${p.cidrText})`;
        if (p.disabled) skipped.push(`${label}: disabled`);
        else if (p.manual) skipped.push(`${label}: assignmentMode Manual`);
        else if (!selectsNode(p, r.labels)) skipped.push(`${label}: nodeSelector does not match`);
        else if (!selectsNamespace(p, r.namespace))
          skipped.push(`${label}: namespaceSelector does not match`);
        else selecting.push(p);
      }
    }
    const eligible = selecting.filter((p) => p.allowedUses.includes(r.use));
    for (const p of selecting)
      if (!eligible.includes(p))
        skipped.push(`${p.name} (${p.cidrText}): allowedUses ${p.allowedUses.join(', ')} exclude ${r.use}`);
    if (eligible.length === 0) throw new NoEligiblePoolError(r.node, r.family, r.use, skipped);
    return { eligible, selecting };
  }

  private async assignFamily(r: FamilyRequest, out: Assigned[]): Promise<void> {
    const { eligible, selecting } = this.eligiblePools(r);
    const within = (ps: readonly Pool[], c: Cidr) => ps.some((p) => cidrContainsIp(p.cidr, c));
    let affs = await this.affinitiesOf(r.node, r.family);

    // Empty blocks still affine to this node in pools that no longer select it go back to
    // the pool (Calico's prepareAffinityBlocksForHost).
    const released = new Set<string>();
    for (const { cidr } of affs) {
      if (within(selecting, cidr)) continue;
      const p = poolForAddress(r.pools, cidr);
      if (p === undefined || selectsNode(p, r.labels)) continue;
      if ((await this.releaseBlockAffinity(r.node, cidr, true)) !== 'notEmpty') {
        released.add(formatCidr(cidr));
        this.log(
          'info',
          `released empty block ${formatCidr(cidr)}: pool ${p.name} no longer selects node ${r.node}`,
        );
      }
    }
    affs = affs.filter((a) => !released.has(formatCidr(a.cidr)));
    const st = {
      remaining: affs.filter((a) => within(eligible, a.cidr)).map((a) => a.cidr),
      owned: affs.length,
    };

    let idle = 0;
    while (out.length < r.num) {
      const blk = await this.findOrClaimBlock(r, eligible, st);
      if (blk === undefined) break;
      const got = await this.assignFromBlock(blk, r, r.num - out.length, r.cfg.strictAffinity);
      out.push(...got);
      // A block that filled between finding and writing makes no progress; bounded.
      if (got.length === 0 && ++idle >= this.maxAttempts)
        throw new RetriesExhaustedError(
          `assigning IPv${r.family} addresses on node ${r.node}`,
          idle,
          undefined,
        );
    }

    let detail = '';
    if (out.length < r.num) {
      if (r.cfg.strictAffinity) detail = 'no free affine block, and strictAffinity forbids borrowing';
      else {
        await this.borrow(r, eligible, out);
        if (!r.cfg.autoAllocateBlocks) detail = 'autoAllocateBlocks is off';
      }
    }
    if (out.length < r.num)
      throw new PoolExhaustedError(
        r.node,
        r.family,
        eligible.map((p) => `${p.name} (${p.cidrText})`),
        r.num,
        out.length,
        detail,
      );
  }

  /** A block with room: an affine one first, then a newly claimed one; undefined: none left. */
  private async findOrClaimBlock(
    r: FamilyRequest,
    eligible: readonly Pool[],
    st: { remaining: Cidr[]; owned: number },
  ): Promise<IPAMBlock | undefined> {
    for (let c = st.remaining.shift(); c !== undefined; c = st.remaining.shift()) {
      const cidr = c;
      const blk = await this.attempt(`BlockAffinity ${affinityName(r.node, formatCidr(cidr))}`, async () => {
        const aff = await this.getAffinity(r.node, cidr);
        if (aff === undefined) return undefined;
        try {
          return await this.blockFromAffinity(aff, r.node, cidr);
        } catch (e) {
          if (e instanceof StaleAffinity || e instanceof BlockTaken) return undefined;
          throw e;
        }
      });
      if (blk !== undefined && freeCount(blk.spec) > 0) {
        // Still worth a look after this request takes what it needs.
        st.remaining.unshift(cidr);
        return blk;
      }
    }
    if (r.cfg.maxBlocksPerHost > 0 && st.owned >= r.cfg.maxBlocksPerHost)
      throw new MaxBlocksReachedError(r.node, r.cfg.maxBlocksPerHost);
    if (!r.cfg.autoAllocateBlocks) return undefined;
    for (let i = 0; i < this.maxAttempts; i++) {
      const subnet = await this.findUsableBlock(r.node, eligible);
      if (subnet === undefined) return undefined;
      const blk = await this.attempt(`claiming block ${formatCidr(subnet)} for node ${r.node}`, async () => {
        const pa = await this.pendingAffinity(r.node, subnet);
        try {
          return await this.blockFromAffinity(pa, r.node, subnet);
        } catch (e) {
          if (e instanceof StaleAffinity || e instanceof BlockTaken) return undefined;
          throw e;
        }
      });
      if (blk === undefined) continue; // another node was first: look for another block
      st.owned++;
      if (freeCount(blk.spec) > 0) {
        st.remaining.unshift(subnet);
        return blk;
      }
    }
    throw new RetriesExhaustedError(`finding a free block for node ${r.node}`, this.maxAttempts, undefined);
  }

  private toAssigned(cidr: Cidr, ordinals: readonly number[], pools: readonly Pool[]): Assigned[] {
    const block = formatCidr(cidr);
    const pool = poolForAddress(pools, cidr)?.cidrText ?? '';
    return ordinals.map((o) => ({ ip: addressOf(cidr, o), block, pool }));
  }

  /** Takes up to `num` addresses from one block (re-reading it on conflict). */
  private async assignFromBlock(
    first: IPAMBlock,
    r: FamilyRequest,
    num: number,
    affineOnly: boolean,
  ): Promise<Assigned[]> {
    const cidr = blockCidr(first.spec);
    let cur: IPAMBlock | undefined = first;
    return this.attempt(`IPAMBlock ${first.metadata.name}`, async () => {
      const b = cur ?? (await this.readBlock(cidr));
      cur = undefined;
      if (b === undefined) return [];
      if (affineOnly && b.spec.affinity !== hostAffinity(r.node)) return [];
      const ords = allocate(b.spec, num, r.handle, r.attrs);
      if (ords.length === 0) return [];
      await this.writeWithHandle(r.handle, b, ords.length);
      return this.toAssigned(cidr, ords, r.pools);
    });
  }

  /** Addresses from any non-full block of an eligible pool, affine to anyone or no one. */
  private async borrow(r: FamilyRequest, eligible: readonly Pool[], out: Assigned[]): Promise<void> {
    const blocks = await this.listBlocks();
    for (const p of eligible) {
      const cands = blocks.filter((b) => {
        const c = parseCidr(b.spec.cidr);
        return c !== undefined && cidrContainsIp(p.cidr, c) && freeCount(b.spec) > 0;
      });
      for (let i = cands.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [cands[i], cands[j]] = [cands[j]!, cands[i]!];
      }
      for (const b of cands) {
        if (out.length >= r.num) return;
        const got = await this.assignFromBlock(b, r, r.num - out.length, false);
        if (got.length > 0)
          this.log(
            'info',
            `node ${r.node} borrowed ${got.length} from block ${b.spec.cidr} (${b.spec.affinity ?? 'unowned'})`,
          );
        out.push(...got);
      }
    }
  }

  // ---------------------------------------------------------------- explicit assignment

  /** Assigns one given address; claims its block for the node if the block does not exist yet. */
  async assignIp(req: AssignIpRequest): Promise<Assigned> {
    const a = parseIp(req.ip);
    if (a === undefined) throw new InvalidRequestError(`${JSON.stringify(req.ip)} is not an IP address`);
    if (req.handleId === '') throw new InvalidRequestError('handleId must not be empty');
    const [cfg, all] = await Promise.all([this.config(), this.pools()]);
    const pools = all.filter((p) => !p.disabled);
    const pool = poolForAddress(pools, a);
    if (pool === undefined) throw new AddressNotInPoolError(req.ip);
    const cidr = blockFor(pool, a);
    const attrs = { node: req.node, ...(req.attrs ?? {}) };
    let claiming = false;
    return this.attempt(`assigning ${req.ip}`, async () => {
      let b = await this.readBlock(cidr);
      if (b === undefined) {
        claiming = true;
        const pa = await this.pendingAffinity(req.node, cidr);
        try {
          b = await this.claimAffineBlock(pa, req.node, cidr);
        } catch (e) {
          if (e instanceof BlockTaken) return RETRY;
          throw e;
        }
      } else if (claiming && b.spec.affinity !== hostAffinity(req.node)) {
        // An earlier attempt began a claim and failed before creating the block; another
        // node created it since. Our pending affinity must not outlive the attempt.
        const aff = await this.getAffinity(req.node, cidr);
        if (aff !== undefined && aff.spec.state !== 'confirmed') await this.deleteIfSame(aff);
        claiming = false;
      } else if (b.spec.affinity === hostAffinity(req.node)) {
        // Our block: finish a claim that was cut short (its affinity missing or not confirmed).
        const aff = await this.getAffinity(req.node, cidr);
        if (aff?.spec.state !== 'confirmed') {
          try {
            b = await this.blockFromAffinity(
              aff ?? (await this.pendingAffinity(req.node, cidr)),
              req.node,
              cidr,
            );
          } catch (e) {
            if (e instanceof StaleAffinity || e instanceof BlockTaken) return RETRY;
            throw e;
          }
        }
      }
      if (cfg.strictAffinity && b.spec.affinity !== hostAffinity(req.node))
        throw new AffinityMismatchError(req.node, b.spec.cidr, b.spec.affinity);
      const ord = ordinalOf(cidr, a)!;
      const owner = ownerOf(b.spec, ord);
      if (owner !== undefined) throw new AddressInUseError(req.ip, owner.handle, owner.attrs);
      assignOrdinal(b.spec, ord, req.handleId, attrs);
      await this.writeWithHandle(req.handleId, b, 1);
      return { ip: addressOf(cidr, ord), block: formatCidr(cidr), pool: pool.cidrText };
    });
  }

  // ---------------------------------------------------------------- release

  /** Releases the given addresses; returns those that were not allocated. */
  async releaseIps(ips: readonly string[]): Promise<string[]> {
    const addrs: Address[] = [];
    for (const t of ips) {
      const a = parseIp(t);
      if (a === undefined) throw new InvalidRequestError(`${JSON.stringify(t)} is not an IP address`);
      addrs.push(a);
    }
    // Every pool, disabled ones too: an address in a disabled pool can still be released.
    const pools = await this.pools();
    let blocks: Cidr[] | undefined;
    const groups = new Map<string, { cidr: Cidr; addrs: Address[] }>();
    const unallocated: string[] = [];
    for (const a of addrs) {
      let cidr: Cidr | undefined;
      const p = poolForAddress(pools, a);
      if (p !== undefined) cidr = blockFor(p, a);
      else {
        // Not in any pool (deleted since): find its block by scanning.
        blocks ??= (await this.listBlocks()).map((b) => blockCidr(b.spec));
        cidr = blocks.find((c) => cidrContainsIp(c, a));
      }
      if (cidr === undefined) {
        unallocated.push(formatIp(a));
        continue;
      }
      const key = formatCidr(cidr);
      const g = groups.get(key) ?? { cidr, addrs: [] };
      g.addrs.push(a);
      groups.set(key, g);
    }
    for (const g of groups.values())
      unallocated.push(...(await this.releaseFromBlock(g.cidr, g.addrs, pools)));
    return unallocated;
  }

  private async releaseFromBlock(
    cidr: Cidr,
    addrs: readonly Address[],
    pools: readonly Pool[],
  ): Promise<string[]> {
    const text = (a: Address) => formatIp(a);
    const { freed, unallocated, spec } = await this.attempt(
      `IPAMBlock ${blockName(formatCidr(cidr))}`,
      async () => {
        const b = await this.readBlock(cidr);
        if (b === undefined)
          return { freed: new Map<string, number>(), unallocated: addrs.map(text), spec: undefined };
        const unalloc: string[] = [];
        const ords: number[] = [];
        for (const a of addrs) {
          const o = ordinalOf(cidr, a);
          if (o === undefined || ownerOf(b.spec, o) === undefined) unalloc.push(text(a));
          else ords.push(o);
        }
        if (ords.length === 0)
          return { freed: new Map<string, number>(), unallocated: unalloc, spec: undefined };
        const byHandle = releaseOrdinals(b.spec, ords);
        // An empty block that no node owns goes; an affine one stays for its node.
        if (isEmpty(b.spec) && b.spec.affinity === undefined) await this.deleteIfSame(b);
        else await this.writeBlock(b);
        return { freed: byHandle, unallocated: unalloc, spec: b.spec };
      },
    );
    for (const [h, n] of freed) await this.decrementHandleQuiet(h, formatCidr(cidr), n);
    if (spec !== undefined) await this.ensureConsistentAffinity(spec, pools);
    return unallocated;
  }

  /** Releases every address of the handle. Idempotent: an unknown handle is a no-op. */
  async releaseByHandle(handleId: string): Promise<void> {
    const h = await this.getHandle(handleId);
    if (h === undefined) return;
    const pools = await this.pools();
    for (const text of Object.keys(h.spec.block)) {
      const c = parseCidr(text);
      if (c === undefined) continue;
      const cidr: Cidr = { family: c.family, value: c.value, len: c.len };
      const spec = await this.attempt(`IPAMBlock ${blockName(text)}`, async () => {
        const b = await this.readBlock(cidr);
        if (b === undefined || releaseHandle(b.spec, handleId) === 0) return undefined;
        if (isEmpty(b.spec) && b.spec.affinity === undefined) await this.deleteIfSame(b);
        else await this.writeBlock(b);
        return b.spec;
      });
      if (spec !== undefined) await this.ensureConsistentAffinity(spec, pools);
    }
    await this.reconcileHandle(handleId);
  }

  /** An emptied block whose pool no longer selects its node loses its affinity (Calico). */
  private async ensureConsistentAffinity(spec: IPAMBlock['spec'], pools: readonly Pool[]): Promise<void> {
    const node = affinityNode(spec.affinity);
    if (node === undefined || !isEmpty(spec)) return;
    try {
      const n = (await this.get({ kind: 'Node', name: node })) as Node | undefined;
      const cidr = blockCidr(spec);
      const p = poolForAddress(pools, cidr);
      if (n === undefined || p === undefined || selectsNode(p, n.metadata.labels ?? {})) return;
      await this.releaseBlockAffinity(node, cidr, true);
    } catch (e) {
      this.log(
        'warn',
        `checking the affinity of ${spec.cidr}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  /**
   * Releases the node's affinity for one block (Calico's releaseBlockAffinity): an empty
   * block is deleted, one still in use keeps its addresses and loses its affinity.
   */
  private async releaseBlockAffinity(
    node: string,
    cidr: Cidr,
    requireEmpty: boolean,
  ): Promise<'released' | 'none' | 'stale' | 'notEmpty'> {
    return this.attempt(`BlockAffinity ${affinityName(node, formatCidr(cidr))}`, async () => {
      const aff = await this.getAffinity(node, cidr);
      if (aff === undefined) return 'none';
      const b = await this.readBlock(cidr);
      if (b === undefined) {
        await this.deleteIfSame(aff); // names no block: dangling
        return 'released';
      }
      if (b.spec.affinity !== undefined && b.spec.affinity !== hostAffinity(node)) {
        await this.deleteIfSame(aff);
        return 'stale';
      }
      if (requireEmpty && !isEmpty(b.spec)) {
        if (aff.spec.state === 'pendingDeletion') {
          aff.spec.state = 'confirmed';
          await this.backend.update(aff);
        }
        return 'notEmpty';
      }
      aff.spec.state = 'pendingDeletion';
      const marked = await this.backend.update(aff);
      if (isEmpty(b.spec)) await this.deleteIfSame(b);
      else {
        delete b.spec.affinity;
        delete b.spec.affinityClaimTime;
        await this.writeBlock(b);
      }
      await this.deleteIfSame(marked);
      this.log('info', `node ${node} released block ${b.spec.cidr}`);
      return 'released';
    });
  }

  /** Releases the node's affinity for every block within `cidr`; returns those released. */
  async releaseAffinity(node: string, cidr: string): Promise<string[]> {
    const c = parseCidr(cidr);
    if (c === undefined) throw new InvalidRequestError(`${JSON.stringify(cidr)} is not a CIDR`);
    const out: string[] = [];
    for (const a of await this.affinitiesOf(node))
      if (cidrWithin(a.cidr, c) && (await this.releaseBlockAffinity(node, a.cidr, false)) === 'released')
        out.push(formatCidr(a.cidr));
    return out;
  }

  /** Releases all of the node's affinities (node removal); best effort, first error thrown at the end. */
  async releaseHostAffinities(node: string): Promise<string[]> {
    const out: string[] = [];
    let first: Error | undefined;
    for (const a of await this.affinitiesOf(node)) {
      try {
        if ((await this.releaseBlockAffinity(node, a.cidr, false)) === 'released')
          out.push(formatCidr(a.cidr));
      } catch (e) {
        first ??= e instanceof Error ? e : new Error(String(e));
      }
    }
    if (first !== undefined) throw first;
    return out;
  }

  /**
   * Gives back the node's empty affine blocks beyond `keep` per address family (Calico keeps
   * every one: a node that once ran many pods hoards blocks other nodes could use).
   */
  async releaseEmptyAffineBlocks(node: string, keep = 1): Promise<string[]> {
    const out: string[] = [];
    for (const family of [4, 6] as const) {
      const empty: Cidr[] = [];
      for (const a of await this.affinitiesOf(node, family)) {
        const b = await this.readBlock(a.cidr);
        if (b !== undefined && b.spec.affinity === hostAffinity(node) && isEmpty(b.spec)) empty.push(a.cidr);
      }
      for (const c of empty.slice(keep))
        if ((await this.releaseBlockAffinity(node, c, true)) === 'released') out.push(formatCidr(c));
    }
    return out;
  }

  // ---------------------------------------------------------------- reports

  /** Usage per pool, block and node (`ipam show`). */
  async getUtilization(): Promise<Utilization> {
    return utilization(await loadSnapshot(this.backend, (m) => this.log('warn', m)));
  }

  /** Every inconsistency in the IPAM state (`ipam check`). */
  async check(): Promise<CheckReport> {
    return checkIpam(await loadSnapshot(this.backend, (m) => this.log('warn', m)));
  }

  // ---------------------------------------------------------------- lookups and tunnels

  /** Every address held by the handle. */
  async ipsByHandle(handleId: string): Promise<Assigned[]> {
    const h = await this.getHandle(handleId);
    if (h === undefined) return [];
    const pools = await this.pools();
    const out: Assigned[] = [];
    for (const text of Object.keys(h.spec.block)) {
      const c = parseCidr(text);
      const b = c === undefined ? undefined : await this.readBlock(c);
      if (b !== undefined)
        out.push(...this.toAssigned(blockCidr(b.spec), ordinalsOfHandle(b.spec, handleId), pools));
    }
    return out;
  }

  /** Who holds an address: undefined when it is free. */
  async addressInfo(
    ip: string,
  ): Promise<{ handle: string | undefined; attrs: Record<string, string>; block: string } | undefined> {
    const a = parseIp(ip);
    if (a === undefined) throw new InvalidRequestError(`${JSON.stringify(ip)} is not an IP address`);
    const p = poolForAddress(await this.pools(), a);
    let b: IPAMBlock | undefined;
    if (p !== undefined) b = await this.readBlock(blockFor(p, a));
    else b = (await this.listBlocks()).find((x) => cidrContainsIp(blockCidr(x.spec), a));
    if (b === undefined) return undefined;
    const o = ordinalOf(blockCidr(b.spec), a);
    const owner = o === undefined ? undefined : ownerOf(b.spec, o);
    return owner === undefined ? undefined : { ...owner, block: b.spec.cidr };
  }

  /**
   * The node's tunnel address (Calico's allocateip): from enabled pools that allow Tunnel
   * use, select the node and have the encapsulation on. Idempotent: an address the handle
   * already holds is returned as it is. Writing it into the Node is the caller's job.
   */
  async assignTunnelAddress(node: string, kind: TunnelKind): Promise<Assigned> {
    const family: Family = kind === 'vxlan-v6' ? 6 : 4;
    const handle = tunnelHandle(node, kind);
    const held = (await this.ipsByHandle(handle)).filter((x) => parseIp(x.ip)?.family === family);
    if (held[0] !== undefined) return held[0];
    const labels = await this.nodeLabels(node);
    const skipped: string[] = [];
    const cidrs: string[] = [];
    for (const p of await this.pools()) {
      if (p.cidr.family !== family) continue;
      const label = `${p.name} (${p.cidrText})`;
      const mode = kind === 'ipip' ? p.spec.ipipMode : p.spec.vxlanMode;
      if (p.disabled) skipped.push(`${label}: disabled`);
      else if (!p.allowedUses.includes('Tunnel')) skipped.push(`${label}: allowedUses exclude Tunnel`);
      else if (!selectsNode(p, labels)) skipped.push(`${label}: nodeSelector does not match`);
      else if (mode !== 'Always' && mode !== 'CrossSubnet')
        skipped.push(`${label}: ${kind === 'ipip' ? 'ipipMode' : 'vxlanMode'} is ${mode ?? 'Never'}`);
      else cidrs.push(p.cidrText);
    }
    if (cidrs.length === 0) throw new NoEligiblePoolError(node, family, 'Tunnel', skipped);
    const r = await this.autoAssign({
      handleId: handle,
      num4: family === 4 ? 1 : 0,
      num6: family === 6 ? 1 : 0,
      node,
      attrs: { type: TUNNEL_ATTR[kind] },
      pools: cidrs,
      use: 'Tunnel',
    });
    const got = family === 4 ? r.ipv4[0] : r.ipv6[0];
    if (got === undefined) throw new Error(`no ${kind} tunnel address was assigned to node ${node}`);
    return got;
  }
}
