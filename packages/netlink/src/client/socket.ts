// One NETLINK_ROUTE socket and the bookkeeping around it: sequence numbers, requests sent
// many to a datagram, replies matched back by sequence number, dumps collected until
// NLMSG_DONE. The kernel handles a request datagram inside sendto(2), so replies are
// usually queued by the time send returns: we read them at once (no event-loop turn per
// batch) and fall back on the uv_poll watcher for the rest (long dumps, late multicast).
import {
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK_TLVS,
} from '../codec/constants.js';
import { decodeAck } from '../codec/ack.js';
import { NetlinkError, NetlinkProtocolError } from '../codec/errors.js';
import type { NlHeader } from '../codec/reader.js';
import { AttrTable, forEachMessage } from '../codec/reader.js';
import type { NlWriter } from '../codec/writer.js';
import type { NativeError, NativeNetlink, WatchHandle } from './native.js';
import { netlinkAddon } from './native.js';

export interface SocketOptions {
  /** A network namespace file (/proc/<pid>/ns/net, /var/run/netns/<name>); default: ours. */
  readonly netns?: string;
  /** RTMGRP_* bits to receive (a monitor); 0 for a request socket. */
  readonly groups?: number;
  /** SO_RCVBUF(FORCE) in bytes. */
  readonly rcvbuf?: number;
  readonly sndbuf?: number;
}

/** Converts an addon failure to a NetlinkError when it carries an errno. */
export function fromNative(e: unknown, operation: string): Error {
  const n = e as NativeError;
  if (typeof n.errno === 'number')
    return new NetlinkError(n.errno, `${operation} (${n.syscall ?? 'syscall'})`, undefined, undefined, {
      cause: e,
    });
  return e instanceof Error ? e : new Error(String(e));
}

/** Sequence numbers [first, first+count) sent together; completes on the last one's ack. */
interface Chunk {
  readonly first: number;
  readonly count: number;
  /** Called for each refused request: its position in the chunk and the kernel's answer. */
  readonly onError: (
    i: number,
    errno: number,
    message: string | undefined,
    offset: number | undefined,
  ) => void;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** A request answered by messages (a dump, or a GET of one object). */
interface Collector {
  readonly seq: number;
  readonly operation: string;
  readonly onMessage: (buf: Buffer, h: NlHeader) => void;
  interrupted: boolean;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

const RECV_BUFFER = 1 << 20;
/**
 * One receive buffer for every socket of the process (a daemon holds a dozen sockets per
 * namespace): a drain reads and dispatches synchronously, so sockets take turns with it. A
 * drain that starts inside another (a callback that sends on a second socket) gets its own.
 */
let spare: Buffer<ArrayBuffer> | undefined;
const NO_BUFFER: Buffer<ArrayBuffer> = Buffer.alloc(0);
const doneTlv = new AttrTable(8);

export class NetlinkSocket {
  private readonly nl: NativeNetlink;
  readonly fd: number;
  private readonly watch: WatchHandle;
  /** The receive buffer while a drain runs. */
  private rbuf: Buffer<ArrayBuffer> = NO_BUFFER;
  private readonly status = new Int32Array(1);
  private seq: number;
  private readonly chunks: Chunk[] = [];
  private readonly collectors = new Map<number, Collector>();
  private closed = false;
  private referenced = false;
  /** Non-reply messages (multicast notifications): the monitor's hook. */
  onNotification: ((buf: Buffer, h: NlHeader) => void) | undefined;
  /** Socket errors with nothing pending to fail (a monitor's ENOBUFS). */
  onSocketError: ((e: NetlinkError) => void) | undefined;

  constructor(opts: SocketOptions = {}) {
    this.nl = netlinkAddon();
    try {
      this.fd = this.nl.open(
        opts.netns ?? null,
        opts.groups ?? 0,
        opts.rcvbuf ?? 8 << 20,
        opts.sndbuf ?? 1 << 20,
      );
    } catch (e) {
      throw fromNative(e, `netlink socket${opts.netns !== undefined ? ` in ${opts.netns}` : ''}`);
    }
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
    this.watch = this.nl.watch(this.fd, () => this.drain());
    this.nl.ref(this.watch, false);
  }

  /** Reserves count consecutive sequence numbers; returns the first. */
  reserve(count: number): number {
    const first = this.seq;
    this.seq = (this.seq + count) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return first;
  }

  /**
   * Sends messages [0, w.length) of w as one datagram; they carry sequence numbers
   * first..first+count-1 in order, and only the last asks for an ACK (the kernel reports
   * errors whether asked or not, and handles a datagram's messages in order, so the last
   * ACK means every earlier request is done).
   */
  sendChunk(
    w: NlWriter,
    start: number,
    end: number,
    first: number,
    count: number,
    onError: Chunk['onError'],
  ): Promise<void> {
    if (this.closed) return Promise.reject(new NetlinkError(9, 'send on a closed netlink socket'));
    return new Promise<void>((resolve, reject) => {
      this.chunks.push({ first, count, onError, resolve, reject });
      this.updateRef();
      try {
        const n = this.nl.send(this.fd, start === 0 ? w.buf : w.buf.subarray(start), end - start);
        if (n < 0) throw Object.assign(new Error('sendto: EAGAIN'), { errno: 11, syscall: 'sendto' });
      } catch (e) {
        this.chunks.pop();
        this.updateRef();
        reject(fromNative(e, 'netlink send'));
        return;
      }
      this.drain();
    });
  }

  /** Sends one request whose answer is messages (a dump or a GET); onMessage sees each. */
  collect(
    w: NlWriter,
    start: number,
    seq: number,
    operation: string,
    onMessage: (buf: Buffer, h: NlHeader) => void,
  ): Promise<void> {
    if (this.closed) return Promise.reject(new NetlinkError(9, `${operation} on a closed netlink socket`));
    return new Promise<void>((resolve, reject) => {
      const c: Collector = { seq, operation, onMessage, interrupted: false, resolve, reject };
      this.collectors.set(seq, c);
      this.updateRef();
      try {
        const n = this.nl.send(this.fd, start === 0 ? w.buf : w.buf.subarray(start), w.length - start);
        if (n < 0) throw Object.assign(new Error('sendto: EAGAIN'), { errno: 11, syscall: 'sendto' });
      } catch (e) {
        this.collectors.delete(seq);
        this.updateRef();
        reject(fromNative(e, operation));
        return;
      }
      this.drain();
    });
  }

  /** Keep the event loop alive only while replies are awaited (or always, for a monitor). */
  private keepAlive = false;
  setKeepAlive(on: boolean): void {
    this.keepAlive = on;
    this.updateRef();
  }

  private updateRef(): void {
    if (this.closed) return;
    const want = this.keepAlive || this.chunks.length > 0 || this.collectors.size > 0;
    if (want !== this.referenced) {
      this.nl.ref(this.watch, want);
      this.referenced = want;
    }
  }

  /** Reads what is queued and dispatches it. Runs from send paths and the poll callback. */
  drain(): void {
    if (this.closed) return;
    const outer = this.rbuf;
    const buf = spare ?? Buffer.allocUnsafe(RECV_BUFFER);
    spare = undefined;
    this.rbuf = buf;
    try {
      this.drainInto();
    } finally {
      this.rbuf = outer;
      spare = buf;
    }
    this.updateRef();
  }

  private drainInto(): void {
    for (;;) {
      const n = this.nl.recv(this.fd, this.rbuf, this.status);
      if (n > 0) {
        try {
          forEachMessage(this.rbuf, 0, n, this.dispatch);
        } catch (e) {
          // a malformed reply leaves every pending request's fate unknown
          this.failAll(e instanceof Error ? e : new NetlinkProtocolError(String(e)));
        }
      }
      const err = this.status[0]!;
      if (err !== 0) {
        const e = new NetlinkError(
          err,
          'netlink receive',
          err === 105 ? 'receive buffer overrun: messages were dropped' : undefined,
        );
        if (this.chunks.length > 0 || this.collectors.size > 0) this.failAll(e);
        else this.onSocketError?.(e);
        continue;
      }
      // a full buffer may mean more is queued; read again, else wait for the poll
      if (n < this.rbuf.length - (64 << 10)) break;
    }
  }

  private readonly dispatch = (h: NlHeader): void => {
    const buf = this.rbuf;
    if (h.type === NLMSG_NOOP) return;
    if (h.type === NLMSG_OVERRUN) {
      this.failAll(new NetlinkError(105, 'netlink overrun'));
      return;
    }
    const c = this.collectors.get(h.seq);
    if (h.type === NLMSG_ERROR) {
      const ack = decodeAck(buf, h);
      const col = this.collectors.get(ack.seq);
      if (col !== undefined) {
        this.collectors.delete(ack.seq);
        if (ack.error === 0) col.resolve();
        else col.reject(new NetlinkError(-ack.error, col.operation, ack.message, ack.offset));
        return;
      }
      this.onAck(ack.seq, ack.error, ack.message, ack.offset);
      return;
    }
    if (c !== undefined) {
      if ((h.flags & NLM_F_DUMP_INTR) !== 0) c.interrupted = true;
      if (h.type === NLMSG_DONE) {
        this.collectors.delete(h.seq);
        // NLMSG_DONE carries the dump's own result (an int), with TLVs like an error
        const status = h.end - h.start >= 4 ? buf.readInt32LE(h.start) : 0;
        if (status < 0) {
          let message: string | undefined;
          if ((h.flags & NLM_F_ACK_TLVS) !== 0)
            message = doneTlv.parse(buf, h.start + 4, h.end).string(buf, 1);
          c.reject(new NetlinkError(-status, c.operation, message));
        } else if (c.interrupted)
          c.reject(
            new NetlinkError(
              4,
              c.operation,
              'dump interrupted by a concurrent change (NLM_F_DUMP_INTR): dump again',
            ),
          );
        else c.resolve();
        return;
      }
      try {
        c.onMessage(buf, h);
      } catch (e) {
        this.collectors.delete(h.seq);
        c.reject(e instanceof Error ? e : new Error(String(e)));
      }
      return;
    }
    // a notification carries the seq of whatever request caused it, so anything that is not
    // an answer to one of ours is one
    this.onNotification?.(buf, h);
  };

  private onAck(seq: number, error: number, message: string | undefined, offset: number | undefined): void {
    for (let k = 0; k < this.chunks.length; k++) {
      const ch = this.chunks[k]!;
      const i = (seq - ch.first) >>> 0;
      if (i >= ch.count) continue;
      if (error !== 0) ch.onError(i, -error, message, offset);
      if (i === ch.count - 1) {
        this.chunks.splice(k, 1);
        ch.resolve();
      }
      return;
    }
  }

  private failAll(e: Error): void {
    const chunks = this.chunks.splice(0);
    const cols = [...this.collectors.values()];
    this.collectors.clear();
    for (const ch of chunks) ch.reject(e);
    for (const c of cols) c.reject(e);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.nl.unwatch(this.watch);
    this.nl.close(this.fd);
    this.failAll(new NetlinkError(9, 'netlink socket closed with requests pending'));
  }
}
