// The rtnetlink client Tabby's reconciler and CNI plugin use: links, addresses, routes and
// neighbours in one network namespace (ours, or one given by path), one request at a time
// or many in a batch (one datagram per few thousand requests: what makes programming
// 10,000 routes cheap), and dumps as arrays.
import { openSync } from 'node:fs';
import type { AddressInfo, AddressSpec } from '../codec/address.js';
import { decodeAddress, encodeAddress, encodeAddressDump } from '../codec/address.js';
import {
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
} from '../codec/constants.js';
import { NetlinkError, NetlinkProtocolError } from '../codec/errors.js';
import type { IpVersion } from '../codec/ip.js';
import type { LinkChange, LinkInfo, LinkRef, LinkSpec } from '../codec/link.js';
import { decodeLink, encodeLinkDump, encodeLinkRef, encodeNewLink, encodeSetLink } from '../codec/link.js';
import type { NeighbourFamily, NeighbourInfo, NeighbourSpec } from '../codec/neighbour.js';
import { decodeNeighbour, encodeNeighbour, encodeNeighbourDump } from '../codec/neighbour.js';
import type { NlHeader } from '../codec/reader.js';
import type { RouteDumpFilter, RouteInfo, RouteQuery, RouteSpec } from '../codec/route.js';
import { decodeRoute, describeRoute, encodeRoute, encodeRouteDump, encodeRouteGet } from '../codec/route.js';
import { decodeRouteView, RouteView } from '../codec/route-view.js';
import { NlWriter } from '../codec/writer.js';
import { netlinkAddon } from './native.js';
import type { SocketOptions } from './socket.js';
import { fromNative, NetlinkSocket } from './socket.js';

const CREATE = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
const REPLACE = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
const PLAIN = NLM_F_REQUEST;

/** Requests per datagram: bounds the error replies one datagram can queue at once. */
const CHUNK_MESSAGES = 2048;
/** Bytes per datagram (under the socket's send buffer). */
const CHUNK_BYTES = 256 << 10;

export interface ClientOptions {
  /** A network namespace file (/proc/<pid>/ns/net, /var/run/netns/<name>); default: ours. */
  readonly netns?: string;
}

/** A refused request in a batch: its position in the batch and the kernel's error. */
export interface BatchFailure {
  readonly index: number;
  readonly error: NetlinkError;
}

type Described =
  { readonly kind: 'route'; readonly spec: RouteSpec } | { readonly kind: 'other'; readonly what: string };

/**
 * Requests encoded as they are added, sent on commit() in as few datagrams as the chunk
 * limits allow; a failure of one does not stop the others (as `ip -batch -force`).
 */
export class RtnlBatch {
  private readonly w: NlWriter;
  /** Message start offsets; the message i ends where i+1 starts (or at w.length). */
  private starts: number[] = [];
  private readonly what: (Described | string)[] = [];
  private committed = false;

  constructor(
    private readonly sock: NetlinkSocket,
    initialBytes = 256 << 10,
  ) {
    this.w = new NlWriter(initialBytes);
  }

  get size(): number {
    return this.starts.length;
  }

  private push(start: number, what: Described | string): this {
    this.starts.push(start);
    this.what.push(what);
    return this;
  }

  private check(): void {
    if (this.committed) throw new Error('this batch was already committed');
  }

  /** Adds a route (fails with EEXIST if one with the same key exists). */
  addRoute(r: RouteSpec): this {
    this.check();
    return this.push(encodeRoute(this.w, RTM_NEWROUTE, CREATE, 0, r), { kind: 'route', spec: r });
  }

  /** Adds or replaces the route with r's key (table, dst, tos, priority). */
  replaceRoute(r: RouteSpec): this {
    this.check();
    return this.push(encodeRoute(this.w, RTM_NEWROUTE, REPLACE, 0, r), { kind: 'route', spec: r });
  }

  deleteRoute(r: RouteSpec): this {
    this.check();
    return this.push(encodeRoute(this.w, RTM_DELROUTE, PLAIN, 0, r), { kind: 'route', spec: r });
  }

  addAddress(a: AddressSpec): this {
    this.check();
    return this.push(
      encodeAddress(this.w, RTM_NEWADDR, CREATE, 0, a),
      `RTM_NEWADDR ${a.address}/${a.prefixLen}`,
    );
  }

  replaceAddress(a: AddressSpec): this {
    this.check();
    return this.push(
      encodeAddress(this.w, RTM_NEWADDR, REPLACE, 0, a),
      `RTM_NEWADDR ${a.address}/${a.prefixLen}`,
    );
  }

  deleteAddress(a: AddressSpec): this {
    this.check();
    return this.push(
      encodeAddress(this.w, RTM_DELADDR, PLAIN, 0, a),
      `RTM_DELADDR ${a.address}/${a.prefixLen}`,
    );
  }

  createLink(spec: LinkSpec): this {
    this.check();
    return this.push(
      encodeNewLink(this.w, RTM_NEWLINK, CREATE, 0, spec),
      `RTM_NEWLINK ${spec.kind} ${spec.name}`,
    );
  }

  setLink(ref: LinkRef, change: LinkChange): this {
    this.check();
    return this.push(encodeSetLink(this.w, RTM_NEWLINK, PLAIN, 0, ref, change), `RTM_NEWLINK (set) ${ref}`);
  }

  deleteLink(ref: LinkRef): this {
    this.check();
    return this.push(encodeLinkRef(this.w, RTM_DELLINK, PLAIN, 0, ref), `RTM_DELLINK ${ref}`);
  }

  /** Adds or replaces a neighbour / FDB entry (as `ip neigh replace`, `bridge fdb replace`). */
  setNeighbour(n: NeighbourSpec): this {
    this.check();
    return this.push(
      encodeNeighbour(this.w, RTM_NEWNEIGH, REPLACE, 0, n),
      `RTM_NEWNEIGH ${n.dst ?? ''} ${n.lladdr ?? ''} dev ${n.index}`,
    );
  }

  deleteNeighbour(n: NeighbourSpec): this {
    this.check();
    return this.push(
      encodeNeighbour(this.w, RTM_DELNEIGH, PLAIN, 0, n),
      `RTM_DELNEIGH ${n.dst ?? ''} ${n.lladdr ?? ''} dev ${n.index}`,
    );
  }

  private describe(i: number): string {
    const d = this.what[i]!;
    if (typeof d === 'string') return d;
    if (d.kind === 'route') {
      const type = this.w.buf.readUInt16LE(this.starts[i]! + 4);
      return `${type === RTM_NEWROUTE ? 'RTM_NEWROUTE' : 'RTM_DELROUTE'} ${describeRoute(d.spec)}`;
    }
    return d.what;
  }

  /**
   * Sends everything; resolves with the refused requests (empty when all succeeded). Rejects
   * only when the outcome is unknown (socket closed, receive overrun): then resync.
   */
  async commit(): Promise<BatchFailure[]> {
    this.check();
    this.committed = true;
    const failures: BatchFailure[] = [];
    const n = this.starts.length;
    if (n === 0) return failures;
    const buf = this.w.buf;
    const first = this.sock.reserve(n);
    let i = 0;
    while (i < n) {
      // one chunk: [i, j)
      const chunkStart = this.starts[i]!;
      let j = i + 1;
      while (j < n && j - i < CHUNK_MESSAGES && this.starts[j]! - chunkStart < CHUNK_BYTES) j++;
      const chunkEnd = j < n ? this.starts[j]! : this.w.length;
      for (let k = i; k < j; k++) {
        const at = this.starts[k]!;
        buf.writeUInt32LE((first + k) >>> 0, at + 8);
        const flags = buf.readUInt16LE(at + 6);
        buf.writeUInt16LE(k === j - 1 ? flags | NLM_F_ACK : flags & ~NLM_F_ACK, at + 6);
      }
      const base = i;
      await this.sock.sendChunk(
        this.w,
        chunkStart,
        chunkEnd,
        (first + i) >>> 0,
        j - i,
        (k, errno, message, offset) =>
          failures.push({
            index: base + k,
            error: new NetlinkError(errno, this.describe(base + k), message, offset),
          }),
      );
      i = j;
    }
    return failures;
  }
}

export interface RouteOptions {
  /** Replace a route with the same key instead of failing with EEXIST. */
  readonly replace?: boolean;
}

/** An open rtnetlink connection to one network namespace. */
export class RtnlClient {
  private readonly sock: NetlinkSocket;
  private readonly w = new NlWriter(4096);
  private dumping: Promise<unknown> = Promise.resolve();
  readonly netns: string | undefined;

  private constructor(opts: ClientOptions) {
    const so: { -readonly [K in keyof SocketOptions]: SocketOptions[K] } = {};
    if (opts.netns !== undefined) so.netns = opts.netns;
    this.sock = new NetlinkSocket(so);
    this.netns = opts.netns;
  }

  static open(opts: ClientOptions = {}): RtnlClient {
    return new RtnlClient(opts);
  }

  close(): void {
    this.sock.close();
  }

  batch(): RtnlBatch {
    return new RtnlBatch(this.sock);
  }

  /** One request, answered by an ACK: throws its NetlinkError. */
  private async one(fill: (b: RtnlBatch) => void): Promise<void> {
    const b = new RtnlBatch(this.sock, 1024);
    fill(b);
    const failures = await b.commit();
    const f = failures[0];
    if (f !== undefined) throw f.error;
  }

  createLink(spec: LinkSpec): Promise<void> {
    return this.one((b) => b.createLink(spec));
  }

  setLink(ref: LinkRef, change: LinkChange): Promise<void> {
    return this.one((b) => b.setLink(ref, change));
  }

  deleteLink(ref: LinkRef): Promise<void> {
    return this.one((b) => b.deleteLink(ref));
  }

  addAddress(a: AddressSpec, opts: { readonly replace?: boolean } = {}): Promise<void> {
    return this.one((b) => (opts.replace === true ? b.replaceAddress(a) : b.addAddress(a)));
  }

  deleteAddress(a: AddressSpec): Promise<void> {
    return this.one((b) => b.deleteAddress(a));
  }

  addRoute(r: RouteSpec, opts: RouteOptions = {}): Promise<void> {
    return this.one((b) => (opts.replace === true ? b.replaceRoute(r) : b.addRoute(r)));
  }

  replaceRoute(r: RouteSpec): Promise<void> {
    return this.one((b) => b.replaceRoute(r));
  }

  deleteRoute(r: RouteSpec): Promise<void> {
    return this.one((b) => b.deleteRoute(r));
  }

  setNeighbour(n: NeighbourSpec): Promise<void> {
    return this.one((b) => b.setNeighbour(n));
  }

  deleteNeighbour(n: NeighbourSpec): Promise<void> {
    return this.one((b) => b.deleteNeighbour(n));
  }

  /** One link by index or name; NetlinkError ENODEV when there is none. */
  async getLink(ref: LinkRef): Promise<LinkInfo> {
    let found: LinkInfo | undefined;
    await this.exclusive(() => {
      this.w.reset();
      const seq = this.sock.reserve(1);
      encodeLinkRef(this.w, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ref);
      return this.sock.collect(this.w, 0, seq, `RTM_GETLINK ${ref}`, (buf, h) => {
        if (h.type === RTM_NEWLINK) found = decodeLink(buf, h);
      });
    });
    if (found === undefined) throw new NetlinkError(19, `RTM_GETLINK ${ref}`, 'no reply');
    return found;
  }

  /** The link's index, or undefined when there is no such link. */
  async linkIndex(name: string): Promise<number | undefined> {
    try {
      return (await this.getLink(name)).index;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }

  links(): Promise<LinkInfo[]> {
    return this.dump(
      'RTM_GETLINK dump',
      (w, seq) => encodeLinkDump(w, seq),
      (buf, h, out: LinkInfo[]) => {
        if (h.type === RTM_NEWLINK) out.push(decodeLink(buf, h));
      },
    );
  }

  addresses(filter: { readonly family?: IpVersion; readonly index?: number } = {}): Promise<AddressInfo[]> {
    return this.dump(
      'RTM_GETADDR dump',
      (w, seq) => encodeAddressDump(w, seq, filter.family, filter.index),
      (buf, h, out: AddressInfo[]) => {
        if (h.type !== RTM_NEWADDR) return;
        const a = decodeAddress(buf, h);
        if (a !== undefined && (filter.index === undefined || a.index === filter.index)) out.push(a);
      },
    );
  }

  /**
   * The route the kernel would use for one flow (`ip route get`): its source address is
   * `prefsrc`, its output interface the next hop's `oif`. NetlinkError ENETUNREACH (or
   * EHOSTUNREACH, EINVAL for a prohibited destination) when there is none.
   */
  async getRoute(q: RouteQuery): Promise<RouteInfo> {
    let found: RouteInfo | undefined;
    const what = `RTM_GETROUTE ${q.dst}`;
    await this.exclusive(() => {
      this.w.reset();
      const seq = this.sock.reserve(1);
      encodeRouteGet(this.w, NLM_F_REQUEST | NLM_F_ACK, seq, q);
      return this.sock.collect(this.w, 0, seq, what, (buf, h) => {
        if (h.type === RTM_NEWROUTE) found = decodeRoute(buf, h);
      });
    });
    if (found === undefined) throw new NetlinkProtocolError(`${what}: acknowledged without a route`);
    return found;
  }

  /** Routes, filtered in the kernel by family, table, protocol, type and output interface. */
  routes(filter: RouteDumpFilter = {}): Promise<RouteInfo[]> {
    return this.dump(
      'RTM_GETROUTE dump',
      (w, seq) => encodeRouteDump(w, seq, filter),
      (buf, h, out: RouteInfo[]) => {
        if (h.type !== RTM_NEWROUTE) return;
        const r = decodeRoute(buf, h);
        // older kernels ignore some filters: check again here
        if (
          r !== undefined &&
          (filter.table === undefined || r.table === filter.table) &&
          (filter.protocol === undefined || r.protocol === filter.protocol) &&
          (filter.type === undefined || r.type === filter.type)
        )
          out.push(r);
      },
    );
  }

  /**
   * Routes as routes() filters them, visited without building objects: `visit` sees one
   * RouteView, reused for every route and valid only during the call (toInfo() copies a
   * route out). For comparing a large dump with what is wanted (a no-change resync).
   * Resolves with the number of routes visited; a throw from `visit` rejects the dump.
   */
  async scanRoutes(filter: RouteDumpFilter, visit: (r: RouteView) => void): Promise<number> {
    const view = new RouteView();
    let n = 0;
    await this.dump(
      'RTM_GETROUTE dump',
      (w, seq) => encodeRouteDump(w, seq, filter),
      (buf, h) => {
        if (h.type !== RTM_NEWROUTE || !decodeRouteView(buf, h, view)) return;
        // older kernels ignore some filters: check again here
        if (
          (filter.table === undefined || view.table === filter.table) &&
          (filter.protocol === undefined || view.protocol === filter.protocol) &&
          (filter.type === undefined || view.type === filter.type)
        ) {
          n++;
          visit(view);
        }
      },
    );
    return n;
  }

  neighbours(
    filter: { readonly family?: NeighbourFamily; readonly index?: number } = {},
  ): Promise<NeighbourInfo[]> {
    return this.dump(
      'RTM_GETNEIGH dump',
      (w, seq) => encodeNeighbourDump(w, seq, filter.family, filter.index),
      (buf, h, out: NeighbourInfo[]) => {
        if (h.type !== RTM_NEWNEIGH) return;
        const n = decodeNeighbour(buf, h);
        if (n !== undefined && (filter.index === undefined || n.index === filter.index)) out.push(n);
      },
    );
  }

  /** The kernel allows one dump at a time per socket: dumps (and GETs) take turns. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.dumping.then(fn, fn);
    this.dumping = run.catch(() => undefined);
    return run;
  }

  private dump<T>(
    operation: string,
    encode: (w: NlWriter, seq: number) => void,
    onMessage: (buf: Buffer, h: NlHeader, out: T[]) => void,
  ): Promise<T[]> {
    return this.exclusive(async () => {
      const out: T[] = [];
      this.w.reset();
      const seq = this.sock.reserve(1);
      encode(this.w, seq);
      await this.sock.collect(this.w, 0, seq, operation, (buf, h) => onMessage(buf, h, out));
      return out;
    });
  }
}

/** /var/run/netns/<name>, where `ip netns add` mounts a named namespace. */
export function netnsPath(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..')
    throw new TypeError(`invalid network namespace name ${JSON.stringify(name)}`);
  return `/var/run/netns/${name}`;
}

/** Opens a network namespace file for IFLA_NET_NS_FD (close it with fs.closeSync). */
export function openNetns(path: string): number {
  return openSync(path, 'r');
}

/** Where the sysctl tree is: /proc/sys, or a bind of it (setSysctlRoot). */
let sysctlRoot = '/proc/sys';

/**
 * Reads and writes sysctls under `dir` instead of /proc/sys: a container that is not
 * privileged has /proc/sys read-only, and a hostPath of the host's /proc/sys/net mounted at
 * `dir`/net is writable with NET_ADMIN (as Cilium does). The entries under net/ follow the
 * network namespace of the thread that opens them, so a bind serves every namespace.
 */
export function setSysctlRoot(dir: string): void {
  if (!dir.startsWith('/') || dir.split('/').includes('..'))
    throw new TypeError(`the sysctl root must be an absolute path, not ${JSON.stringify(dir)}`);
  sysctlRoot = dir.replace(/\/+$/, '') || '/';
}

function sysctlPath(name: string): string {
  if (!/^[A-Za-z0-9_.\-/]+$/.test(name) || name.includes('..'))
    throw new TypeError(`invalid sysctl name ${JSON.stringify(name)}`);
  // net.ipv4.conf.cali1234.proxy_arp -> /proc/sys/net/ipv4/conf/cali1234/proxy_arp
  // (interface names may contain dots: give those in the slash form instead)
  return `${sysctlRoot}/${name.includes('/') ? name.replace(/^\/+/, '') : name.replaceAll('.', '/')}`;
}

/** Reads a sysctl (dotted or slash form) in a network namespace (default: ours). */
export function readSysctl(name: string, netns?: string): string {
  try {
    return netlinkAddon()
      .sysctl(netns ?? null, sysctlPath(name), null)
      .trim();
  } catch (e) {
    throw fromNative(e, `read sysctl ${name}`);
  }
}

/** Writes a sysctl in a network namespace (default: ours). */
export function writeSysctl(name: string, value: string, netns?: string): void {
  try {
    netlinkAddon().sysctl(netns ?? null, sysctlPath(name), value);
  } catch (e) {
    throw fromNative(e, `write sysctl ${name}=${value}`);
  }
}
