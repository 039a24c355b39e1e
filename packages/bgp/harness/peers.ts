// Fast BGP test peers for benchmarks, built on the wire codec: just enough session handling
// (OPEN, KEEPALIVE, hold and keepalive timers, NOTIFICATION) to drive a real speaker, no FSM.
//
// A TestPeer dials the target from its own loopback address. It may announce prefixes
// (packed in full UPDATEs, written as fast as the socket takes them: until write() returns
// false, then on 'drain') and withdraw them all, and it may count what the target sends it:
// per prefix, held or not, keyed by a dense integer from a PrefixIndex (no strings), with the
// moment it first holds everything expected and the moment it holds nothing again. Hold-timer
// expiries are counted both ways: a NOTIFICATION with code 4 from the target, and our own
// hold timer firing.

import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Announcement, Asn, CodecContext } from '../src/wire/index.js';
import {
  ErrorCode,
  KEEPALIVE,
  MessageFramer,
  MessageType,
  PrefixList,
  asn as toAsn,
  decodeFrame,
  encodeMessage,
  makeContext,
  makeOpen,
  packAnnouncements,
  packWithdrawals,
  scanUpdate,
} from '../src/wire/index.js';

// ---------------------------------------------------------------------------------------------
// Prefix sets and the integer index

/** `count` IPv4 prefixes of length `len`, consecutive from `base` (a dotted quad). */
export function ipv4Block(base: string, len: number, count: number): PrefixList {
  return ipv4BlockFrom(ipv4ToInt(base), len, count);
}

/** Like ipv4Block, with the first address as an integer. */
export function ipv4BlockFrom(base: number, len: number, count: number): PrefixList {
  if (len < 1 || len > 32) throw new RangeError(`prefix length ${len}`);
  const step = 2 ** (32 - len);
  if (base % step !== 0) throw new RangeError('base has host bits set');
  if (base + count * step > 2 ** 32) throw new RangeError('block runs past 255.255.255.255');
  const addrs = new Uint32Array(count);
  const lens = new Uint8Array(count).fill(len);
  for (let i = 0; i < count; i++) addrs[i] = base + i * step;
  return new PrefixList(1, addrs, lens);
}

export function ipv4ToInt(a: string): number {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new TypeError(`not an IPv4 address: ${a}`);
  }
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function intToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Maps each prefix of a known set to a dense integer 0..size-1. When the set is IPv4
 * prefixes of one length laid end to end (as ipv4Block makes them), the index is
 * arithmetic; otherwise an open-addressing hash over typed arrays. IPv6 prefixes are
 * keyed by their four words and length.
 */
export class PrefixIndex {
  readonly size: number;
  // Arithmetic layout: index = (addr - base) / step, for len === len0.
  private readonly base: number;
  private readonly step: number;
  private readonly len0: number;
  // Hash layout.
  private readonly mask: number;
  private readonly kAddr: Uint32Array; // 4 words per slot for IPv6, 1 for IPv4
  private readonly kLen: Int16Array; // length + 1, or 0 when empty; IPv6 lengths + 1000
  private readonly kIdx: Int32Array;

  private constructor(lists: readonly PrefixList[]) {
    let n = 0;
    for (const l of lists) n += l.length;
    this.size = n;
    const arith = PrefixIndex.arithmetic(lists);
    if (arith !== undefined) {
      this.base = arith.base;
      this.step = arith.step;
      this.len0 = arith.len;
      this.mask = 0;
      this.kAddr = new Uint32Array(0);
      this.kLen = new Int16Array(0);
      this.kIdx = new Int32Array(0);
      return;
    }
    this.base = 0;
    this.step = 0;
    this.len0 = -1;
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.mask = cap - 1;
    this.kAddr = new Uint32Array(cap * 4);
    this.kLen = new Int16Array(cap);
    this.kIdx = new Int32Array(cap);
    let idx = 0;
    for (const l of lists) {
      for (let i = 0; i < l.length; i++, idx++) {
        if (this.find(l, i) >= 0) throw new RangeError(`duplicate prefix ${l.format(i)} in the index`);
        this.insert(l, i, idx);
      }
    }
  }

  static of(lists: readonly PrefixList[]): PrefixIndex {
    return new PrefixIndex(lists);
  }

  private static arithmetic(lists: readonly PrefixList[]) {
    let base = -1;
    let len = -1;
    let step = 0;
    let next = 0;
    for (const l of lists) {
      if (l.afi !== 1) return undefined;
      for (let i = 0; i < l.length; i++) {
        const a = l.addrs[i] as number;
        const pl = l.lens[i] as number;
        if (base < 0) {
          base = a;
          len = pl;
          step = 2 ** (32 - pl);
          next = a;
        }
        if (pl !== len || a !== next) return undefined;
        next += step;
      }
    }
    return base < 0 ? undefined : { base, len, step };
  }

  private hash(l: PrefixList, i: number): number {
    if (l.afi === 1) {
      return (
        (Math.imul((l.addrs[i] as number) ^ Math.imul(l.lens[i] as number, 0x9e3779b1), 0x85ebca6b) >>> 7) &
        this.mask
      );
    }
    const o = i * 4;
    let h = Math.imul(l.lens[i] as number, 0x9e3779b1);
    for (let k = 0; k < 4; k++) h = Math.imul(h ^ (l.addrs[o + k] as number), 0x85ebca6b) ^ (h >>> 13);
    return (h >>> 7) & this.mask;
  }

  private tag(l: PrefixList, i: number): number {
    return (l.lens[i] as number) + (l.afi === 1 ? 1 : 1000);
  }

  private same(slot: number, l: PrefixList, i: number): boolean {
    if (l.afi === 1) return this.kAddr[slot * 4] === l.addrs[i];
    const o = i * 4;
    const s = slot * 4;
    return (
      this.kAddr[s] === l.addrs[o] &&
      this.kAddr[s + 1] === l.addrs[o + 1] &&
      this.kAddr[s + 2] === l.addrs[o + 2] &&
      this.kAddr[s + 3] === l.addrs[o + 3]
    );
  }

  private insert(l: PrefixList, i: number, idx: number): void {
    let s = this.hash(l, i);
    while (this.kLen[s] !== 0) s = (s + 1) & this.mask;
    this.kLen[s] = this.tag(l, i);
    const w = l.afi === 1 ? 1 : 4;
    for (let k = 0; k < w; k++) this.kAddr[s * 4 + k] = l.addrs[i * w + k] as number;
    this.kIdx[s] = idx;
  }

  private find(l: PrefixList, i: number): number {
    const tag = this.tag(l, i);
    let s = this.hash(l, i);
    for (;;) {
      const t = this.kLen[s] as number;
      if (t === 0) return -1;
      if (t === tag && this.same(s, l, i)) return this.kIdx[s] as number;
      s = (s + 1) & this.mask;
    }
  }

  /** The index of prefix i of the list, or -1 if it is not in the set. */
  lookup(l: PrefixList, i: number): number {
    if (this.len0 >= 0) {
      if (l.afi !== 1 || l.lens[i] !== this.len0) return -1;
      const off = (l.addrs[i] as number) - this.base;
      if (off < 0) return -1;
      const idx = off / this.step;
      return idx < this.size ? idx : -1; // addresses of a decoded prefix have no host bits
    }
    return this.find(l, i);
  }
}

// ---------------------------------------------------------------------------------------------
// The peer

export type PeerState = 'idle' | 'connecting' | 'openSent' | 'openConfirm' | 'established' | 'closed';

export interface CountSpec {
  readonly index: PrefixIndex;
  /** Indices [from, to) that are this peer's own prefixes: not expected back, not counted. */
  readonly excludeFrom?: number;
  readonly excludeTo?: number;
}

export interface TestPeerOptions {
  /** A label for messages. */
  readonly name?: string;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly asn: number;
  /** Default: localAddress when IPv4, else 10.255.255.254. */
  readonly bgpId?: string;
  /** Seconds; default 9. */
  readonly holdTime?: number;
  /** Families in the OPEN's multiprotocol capabilities; default both. */
  readonly families?: readonly ('ipv4' | 'ipv6')[];
  /** What this peer announces (each one attribute set). */
  readonly announcements?: readonly Announcement[];
  /** Count the prefixes the target sends against this set. */
  readonly count?: CountSpec;
  /** Milliseconds a TCP connect may take before it is abandoned and dialled again; default 1000. */
  readonly dialTimeoutMs?: number;
  /** Milliseconds from the TCP connect to Established before the attempt is retried; default 10000. */
  readonly openTimeoutMs?: number;
  /** Called once when an established session ends, or a session attempt fails for good. */
  readonly onDown?: (peer: TestPeer, why: string) => void;
}

export interface NotificationRecord {
  readonly code: number;
  readonly subcode: number;
  /** 'received' from the target or 'sent' by us. */
  readonly dir: 'received' | 'sent';
  readonly at: number;
}

const NOW = () => performance.now();
const CTX: CodecContext = makeContext({ as4: true });

interface Waiter {
  readonly count: number;
  readonly resolve: (t: number) => void;
}

export class TestPeer {
  readonly name: string;
  readonly options: TestPeerOptions;
  state: PeerState = 'idle';
  /** Negotiated hold time in seconds (0: no keepalives). */
  holdTime = 0;
  /** The target's OPEN identifier and ASN, once received. */
  peerId = '';
  peerAsn = 0;
  readonly notifications: NotificationRecord[] = [];
  /** Hold-timer expiries: NOTIFICATION code 4 received, and our own hold timer firing. */
  holdExpiriesReceived = 0;
  holdExpiriesOwn = 0;
  /** Why the session ended, if it did. */
  downReason: string | undefined;
  // Traffic
  bytesIn = 0;
  bytesOut = 0;
  updatesIn = 0;
  keepalivesIn = 0;
  keepalivesOut = 0;
  /** Prefixes the target announced / withdrew to us, every occurrence. */
  announcedIn = 0;
  withdrawnIn = 0;
  /** Announcements of prefixes outside the index (or our own ones echoed back). */
  unexpectedIn = 0;
  // Counting
  /** Prefixes of the index currently held (announced and not withdrawn since). */
  held = 0;
  /** How many prefixes this peer expects to hold once everything is announced. */
  readonly expected: number;
  /** When the first UPDATE of announce() / withdraw() went out (performance.now()). */
  announceStartedAt = 0;
  withdrawStartedAt = 0;
  /** When the last message of announce() / withdraw() was accepted by the socket. */
  announceWrittenAt = 0;
  withdrawWrittenAt = 0;

  private socket: Socket | null = null;
  private framer = new MessageFramer();
  private readonly heldBits: Uint8Array;
  private readonly index: PrefixIndex | undefined;
  private readonly exFrom: number;
  private readonly exTo: number;
  private waiters: Waiter[] = [];
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private lastRecv = 0;
  private lastHoldCheck = 0;
  private setupTimer: NodeJS.Timeout | null = null;
  private drainAbort: (() => void) | null = null;
  /** close() was called: no more connection attempts. */
  private stopped = false;
  private establishedResolve: (() => void) | null = null;
  private establishedReject: ((e: Error) => void) | null = null;
  private announceMsgs: Uint8Array[] | null = null;
  private withdrawMsgs: Uint8Array[] | null = null;

  constructor(options: TestPeerOptions) {
    this.options = options;
    this.name = options.name ?? options.localAddress;
    this.index = options.count?.index;
    this.exFrom = options.count?.excludeFrom ?? 0;
    this.exTo = options.count?.excludeTo ?? 0;
    const size = this.index?.size ?? 0;
    this.heldBits = new Uint8Array(size);
    this.expected = size - Math.max(0, Math.min(size, this.exTo) - Math.max(0, this.exFrom));
  }

  /** Prefixes this peer announces. */
  get announcing(): number {
    let n = 0;
    for (const a of this.options.announcements ?? []) n += a.prefixes.length;
    return n;
  }

  get expiries(): number {
    return this.holdExpiriesReceived + this.holdExpiriesOwn;
  }

  /**
   * Dials the target and resolves once the session is Established. Retries refused or reset
   * connections (a daemon still starting, a full listen queue) until `timeoutMs`.
   */
  async connect(timeoutMs = 60000): Promise<void> {
    const deadline = NOW() + timeoutMs;
    let attempt = 0;
    for (;;) {
      if (this.stopped) throw new Error(`${this.name}: closed`);
      attempt++;
      try {
        await this.connectOnce(deadline);
        return;
      } catch (e) {
        const msg = (e as Error).message;
        this.cleanupSocket();
        if (this.stopped || NOW() > deadline || attempt >= 1000) {
          this.state = 'closed';
          this.downReason = `no session after ${attempt} attempts: ${msg}`;
          throw new Error(`${this.name}: ${this.downReason}`, { cause: e });
        }
        this.state = 'idle';
        await new Promise((r) => setTimeout(r, Math.min(500, 50 * attempt)));
      }
    }
  }

  private connectOnce(deadline: number): Promise<void> {
    const o = this.options;
    this.state = 'connecting';
    this.framer = new MessageFramer();
    return new Promise<void>((resolve, reject) => {
      this.establishedResolve = resolve;
      this.establishedReject = reject;
      const s = new Socket();
      this.socket = s;
      // This attempt ends at the overall deadline, or openTimeoutMs after the TCP connect
      // if the OPEN / KEEPALIVE exchange has not finished by then.
      const giveUp = setTimeout(
        () => this.failSetup(new Error(`no session within the connect timeout (state ${this.state})`)),
        Math.max(1, Math.min(deadline - NOW(), (o.dialTimeoutMs ?? 1000) + (o.openTimeoutMs ?? 10000))),
      );
      this.setupTimer = giveUp;
      s.once('close', () => clearTimeout(giveUp));
      s.setNoDelay(true);
      s.on('error', (e) => this.onSocketGone(`socket error: ${e.message}`));
      s.on('close', () => this.onSocketGone('connection closed by the target'));
      s.on('data', (chunk: Buffer) => this.onData(chunk));
      // A SYN dropped by a full listen queue is retried by the kernel after 1, 3, 7, 15... s;
      // like a speaker with a short ConnectRetry, give up on a TCP connect after a while
      // and dial again.
      const dialTimer = setTimeout(
        () => this.failSetup(new Error(`TCP connect not done in ${o.dialTimeoutMs ?? 1000} ms`)),
        o.dialTimeoutMs ?? 1000,
      );
      s.once('close', () => clearTimeout(dialTimer));
      s.connect({ host: o.remoteAddress, port: o.remotePort, localAddress: o.localAddress }, () => {
        clearTimeout(dialTimer);
        this.state = 'openSent';
        this.lastRecv = NOW();
        this.write(encodeMessage(this.openMessage()));
      });
    });
  }

  private openMessage() {
    const o = this.options;
    const fams = o.families ?? ['ipv4', 'ipv6'];
    return makeOpen({
      asn: toAsn(o.asn),
      holdTime: o.holdTime ?? 9,
      bgpIdentifier: o.bgpId ?? (o.localAddress.includes(':') ? '10.255.255.254' : o.localAddress),
      capabilities: [
        ...fams.map((f) => ({ kind: 'multiprotocol', afi: f === 'ipv4' ? 1 : 2, safi: 1 }) as const),
        { kind: 'routeRefresh' },
        { kind: 'fourOctetAs', asn: toAsn(o.asn) },
      ],
    });
  }

  private failSetup(e: Error): void {
    this.clearSetupTimer();
    const rej = this.establishedReject;
    this.establishedResolve = null;
    this.establishedReject = null;
    this.cleanupSocket();
    rej?.(e);
  }

  private cleanupSocket(): void {
    this.stopTimers();
    this.drainAbort?.();
    const s = this.socket;
    this.socket = null;
    if (s !== null) {
      s.removeAllListeners('data');
      s.removeAllListeners('close');
      s.on('error', () => {});
      s.destroy();
    }
  }

  private onSocketGone(why: string): void {
    if (this.state === 'closed') return;
    if (this.establishedReject !== null) {
      this.failSetup(new Error(why));
      return;
    }
    this.down(why);
  }

  private down(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.downReason ??= why;
    this.cleanupSocket();
    this.options.onDown?.(this, why);
  }

  private write(b: Uint8Array): boolean {
    const s = this.socket;
    if (s === null || s.destroyed) return false;
    this.bytesOut += b.length;
    return s.write(b);
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.lastRecv = NOW();
    try {
      this.framer.push(chunk, (type, frame) => this.onFrame(type, frame));
    } catch (e) {
      this.protocolError(e);
    }
    if (this.waiters.length > 0) this.checkWaiters();
  }

  private protocolError(e: unknown): void {
    const n = e as { code?: number; subcode?: number; message?: string };
    if (typeof n.code === 'number' && typeof n.subcode === 'number') {
      this.sendNotification(n.code, n.subcode);
    }
    const why = `protocol error: ${n.message ?? String(e)}`;
    if (this.establishedReject !== null) this.failSetup(new Error(why));
    else this.down(why);
  }

  private onFrame(type: MessageType, frame: Uint8Array): void {
    if (type === MessageType.Update) {
      if (this.state !== 'established') throw new Error('UPDATE before Established');
      this.updatesIn++;
      if (this.index !== undefined) this.countUpdate(frame);
      return;
    }
    if (type === MessageType.Keepalive) {
      this.keepalivesIn++;
      if (this.state === 'openConfirm') this.established();
      return;
    }
    const m = decodeFrame(frame, CTX);
    switch (m.type) {
      case 'open': {
        if (this.state !== 'openSent') throw new Error('unexpected OPEN');
        this.peerId = m.bgpIdentifier;
        this.peerAsn = m.capabilities.find((c) => c.kind === 'fourOctetAs')?.asn ?? m.myAutonomousSystem;
        const ours = this.options.holdTime ?? 9;
        this.holdTime = Math.min(ours, m.holdTime);
        this.state = 'openConfirm';
        this.write(encodeMessage(KEEPALIVE));
        this.keepalivesOut++;
        break;
      }
      case 'notification': {
        this.notifications.push({ code: m.code, subcode: m.subcode, dir: 'received', at: NOW() });
        if (m.code === ErrorCode.HoldTimerExpired) this.holdExpiriesReceived++;
        const why = `NOTIFICATION ${m.code}/${m.subcode} from the target`;
        if (this.establishedReject !== null) this.failSetup(new Error(why));
        else this.down(why);
        break;
      }
      case 'routeRefresh':
      case 'keepalive':
      case 'update':
        break;
    }
  }

  private clearSetupTimer(): void {
    if (this.setupTimer !== null) clearTimeout(this.setupTimer);
    this.setupTimer = null;
  }

  private established(): void {
    this.clearSetupTimer();
    this.state = 'established';
    const resolve = this.establishedResolve;
    this.establishedResolve = null;
    this.establishedReject = null;
    this.startTimers();
    resolve?.();
  }

  private startTimers(): void {
    if (this.holdTime === 0) return;
    const ka = (this.holdTime * 1000) / 3;
    this.keepaliveTimer = setInterval(() => {
      if (this.state === 'established') {
        this.write(encodeMessage(KEEPALIVE));
        this.keepalivesOut++;
      }
    }, ka);
    this.keepaliveTimer.unref();
    // The hold timer: checked every 250 ms against the time of the last byte received. A
    // check that itself ran late (our event loop was busy, so the target's bytes may be
    // sitting unread in the kernel) does not count.
    const period = 250;
    this.lastHoldCheck = NOW();
    this.holdTimer = setInterval(() => {
      const now = NOW();
      const late = now - this.lastHoldCheck > period * 4;
      this.lastHoldCheck = now;
      if (late) return;
      if (now - this.lastRecv > this.holdTime * 1000) {
        this.holdExpiriesOwn++;
        this.sendNotification(ErrorCode.HoldTimerExpired, 0);
        this.down(`hold timer expired: nothing from the target for ${this.holdTime} s`);
      }
    }, period);
    this.holdTimer.unref();
  }

  private stopTimers(): void {
    if (this.keepaliveTimer !== null) clearInterval(this.keepaliveTimer);
    if (this.holdTimer !== null) clearInterval(this.holdTimer);
    this.keepaliveTimer = null;
    this.holdTimer = null;
  }

  private sendNotification(code: number, subcode: number): void {
    this.notifications.push({ code, subcode, dir: 'sent', at: NOW() });
    this.write(encodeMessage({ type: 'notification', code, subcode, data: new Uint8Array(0) }));
  }

  // ---- counting

  private countUpdate(frame: Uint8Array): void {
    const u = scanUpdate(frame.subarray(19), CTX);
    if (u.withdrawnRoutes.length > 0) this.withdrawList(u.withdrawnRoutes);
    if (u.mpUnreachNlri?.kind === 'prefixes') this.withdrawList(u.mpUnreachNlri.withdrawnRoutes);
    if (u.malformed?.action === 'treat-as-withdraw') {
      this.withdrawList(u.nlri);
      if (u.mpReachNlri?.kind === 'prefixes') this.withdrawList(u.mpReachNlri.nlri);
      return;
    }
    if (u.nlri.length > 0) this.announceList(u.nlri);
    if (u.mpReachNlri?.kind === 'prefixes') this.announceList(u.mpReachNlri.nlri);
  }

  private announceList(l: PrefixList): void {
    const index = this.index as PrefixIndex;
    const bits = this.heldBits;
    const n = l.length;
    this.announcedIn += n;
    for (let i = 0; i < n; i++) {
      const k = index.lookup(l, i);
      if (k < 0 || (k >= this.exFrom && k < this.exTo)) {
        this.unexpectedIn++;
      } else if (bits[k] === 0) {
        bits[k] = 1;
        this.held++;
      }
    }
  }

  private withdrawList(l: PrefixList): void {
    const index = this.index as PrefixIndex;
    const bits = this.heldBits;
    const n = l.length;
    this.withdrawnIn += n;
    for (let i = 0; i < n; i++) {
      const k = index.lookup(l, i);
      if (k >= 0 && bits[k] === 1) {
        bits[k] = 0;
        this.held--;
      }
    }
  }

  private checkWaiters(): void {
    const held = this.held;
    let keep: Waiter[] | null = null;
    const now = NOW();
    for (const w of this.waiters) {
      if (w.count === held) w.resolve(now);
      else (keep ??= []).push(w);
    }
    this.waiters = keep ?? [];
  }

  /** Resolves with the time (performance.now()) at which this peer holds exactly `count` prefixes. */
  whenHolding(count: number): Promise<number> {
    if (this.held === count) return Promise.resolve(NOW());
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  // ---- sending

  /** Encodes the announcements and their withdrawals ahead of time (not timed). */
  prepare(): void {
    const anns = this.options.announcements ?? [];
    this.announceMsgs = anns.flatMap((a) => packAnnouncements(a, CTX));
    this.withdrawMsgs = anns.flatMap((a) => packWithdrawals(a.prefixes, CTX, a.safi ?? 1));
  }

  /** Bytes of the prepared announcements. */
  get announceBytes(): number {
    return (this.announceMsgs ?? []).reduce((n, m) => n + m.length, 0);
  }

  /** Sends every announcement; resolves when the socket has accepted the last one. */
  async announce(): Promise<void> {
    if (this.announceMsgs === null) this.prepare();
    this.announceStartedAt = NOW();
    await this.sendAll(this.announceMsgs as Uint8Array[]);
    this.announceWrittenAt = NOW();
  }

  /** Withdraws every announced prefix; resolves when the socket has accepted the last one. */
  async withdraw(): Promise<void> {
    if (this.withdrawMsgs === null) this.prepare();
    this.withdrawStartedAt = NOW();
    await this.sendAll(this.withdrawMsgs as Uint8Array[]);
    this.withdrawWrittenAt = NOW();
  }

  private async sendAll(msgs: readonly Uint8Array[]): Promise<void> {
    let i = 0;
    while (i < msgs.length) {
      const s = this.socket;
      if (s === null || this.state !== 'established') {
        throw new Error(`${this.name}: session down while sending (${this.downReason ?? this.state})`);
      }
      // Write until the socket says its buffer is full, then wait for 'drain'.
      let ok = true;
      while (ok && i < msgs.length) ok = this.write(msgs[i++] as Uint8Array);
      if (!ok && i < msgs.length) await this.drained(s);
    }
  }

  private drained(s: Socket): Promise<void> {
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.drainAbort = null;
        resolve();
      };
      // cleanupSocket() calls this when the session goes away while we wait.
      this.drainAbort = () => {
        s.off('drain', onDrain);
        this.drainAbort = null;
        reject(new Error(`${this.name}: session down while sending (${this.downReason ?? this.state})`));
      };
      s.once('drain', onDrain);
    });
  }

  /** Sends a Cease (administrative shutdown) and closes. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.establishedReject !== null) {
      // Still setting up: abandon the attempt (connect() then gives up).
      this.failSetup(new Error('closed'));
      this.state = 'closed';
      return;
    }
    if (this.state === 'closed' || this.state === 'idle') {
      this.state = 'closed';
      this.cleanupSocket();
      return;
    }
    const s = this.socket;
    if (this.state === 'established' || this.state === 'openConfirm') {
      this.sendNotification(ErrorCode.Cease, 2);
    }
    this.state = 'closed';
    this.downReason ??= 'closed by us';
    this.stopTimers();
    this.drainAbort?.();
    if (s !== null) {
      s.removeAllListeners('data');
      s.removeAllListeners('close');
      s.on('error', () => {});
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          s.destroy();
          resolve();
        }, 1000);
        s.end(() => {
          clearTimeout(t);
          s.destroy();
          resolve();
        });
      });
    }
    this.socket = null;
  }
}

/** A tester: announces its prefixes, one attribute set per announcement. */
export function tester(opts: Omit<TestPeerOptions, 'count'> & { count?: CountSpec }): TestPeer {
  return new TestPeer(opts);
}

/** A monitor: announces nothing and counts what the target sends it. */
export function monitor(
  opts: Omit<TestPeerOptions, 'announcements' | 'count'> & { index: PrefixIndex },
): TestPeer {
  const { index, ...rest } = opts;
  return new TestPeer({ ...rest, count: { index } });
}

export type { Announcement, Asn };
