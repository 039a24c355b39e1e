// The byte stream a session runs over: a net.Socket in production, an in-memory pair in
// tests. Only what the driver needs: write with backpressure, data, drain, close.

import type { Socket } from 'node:net';

export interface Transport {
  /** false when the transport's buffer is past its high-water mark: wait for onDrain. */
  write(bytes: Uint8Array): boolean;
  /** Close after what was written has gone out. */
  end(): void;
  /** Close now. */
  destroy(): void;
  onData(fn: (chunk: Uint8Array) => void): void;
  /** Stop / start delivering data (TCP keeps it meanwhile; the peer slows down). */
  pause(): void;
  resume(): void;
  onDrain(fn: () => void): void;
  /**
   * Hold writes until uncork, then hand them to the kernel together (one writev instead of
   * a system call per message when many UPDATEs go out at once).
   */
  cork(): void;
  uncork(): void;
  /** Called once, when the transport is closed for any reason. */
  onClose(fn: (error?: Error) => void): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export function socketTransport(s: Socket): Transport {
  let closed = false;
  const closers: ((e?: Error) => void)[] = [];
  let lastError: Error | undefined;
  s.on('error', (e) => (lastError = e));
  s.on('close', () => {
    if (closed) return;
    closed = true;
    for (const f of closers) f(lastError);
  });
  s.setNoDelay(true);
  return {
    write: (b) => s.write(b),
    end: () => s.end(),
    destroy: () => s.destroy(),
    onData: (fn) => s.on('data', fn),
    pause: () => s.pause(),
    resume: () => s.resume(),
    onDrain: (fn) => s.on('drain', fn),
    cork: () => s.cork(),
    uncork: () => s.uncork(),
    onClose: (fn) => closers.push(fn),
    get remoteAddress() {
      return s.remoteAddress ?? '';
    },
    get remotePort() {
      return s.remotePort ?? 0;
    },
    get localAddress() {
      return s.localAddress ?? '';
    },
    get localPort() {
      return s.localPort ?? 0;
    },
  };
}

/**
 * Two connected in-memory transports. Bytes arrive on the other side in a later
 * microtask, as chunks of at most `chunk` bytes; `write` returns false while more than
 * `highWaterMark` bytes wait, and onDrain fires when they have been delivered.
 */
export function memoryPair(
  opts: {
    highWaterMark?: number;
    chunk?: number;
    a?: string;
    b?: string;
    /** Event-loop turns each write waits before delivery (order is kept): simulated latency. */
    latency?: () => number;
  } = {},
): [Transport, Transport] {
  const latency = opts.latency;
  const hwm = opts.highWaterMark ?? 65536;
  const chunk = opts.chunk ?? 65536;
  interface End {
    data: ((c: Uint8Array) => void)[];
    /** Bytes that arrived before anyone read: TCP keeps them until the reader comes. */
    unread: Uint8Array[];
    drain: (() => void)[];
    close: ((e?: Error) => void)[];
    queued: number;
    /** Deliveries happen in write order, each after its latency. */
    tail: Promise<void>;
    closed: boolean;
    ending: boolean;
    peer?: End;
  }
  const mk = (): End => ({
    data: [],
    unread: [],
    drain: [],
    close: [],
    queued: 0,
    tail: Promise.resolve(),
    closed: false,
    ending: false,
  });
  const x = mk();
  const y = mk();
  x.peer = y;
  y.peer = x;
  const close = (e: End) => {
    if (e.closed) return;
    e.closed = true;
    for (const f of e.close) f();
  };
  const transport = (me: End, local: string, remote: string): Transport => ({
    write(bytes) {
      if (me.closed || me.ending) return false;
      const copy = bytes.slice();
      me.queued += copy.length;
      const wait = latency?.() ?? 0;
      const deliver = () => {
        const peer = me.peer!;
        for (let o = 0; o < copy.length && !peer.closed; o += chunk) {
          const part = copy.subarray(o, o + chunk);
          if (peer.data.length === 0) peer.unread.push(part);
          for (const f of peer.data) f(part);
        }
        const was = me.queued;
        me.queued -= copy.length;
        if (was > hwm && me.queued <= hwm && !me.closed) for (const f of me.drain) f();
      };
      if (latency === undefined) queueMicrotask(deliver);
      else
        me.tail = me.tail.then(async () => {
          for (let i = 0; i < wait; i++) await new Promise((r) => setImmediate(r));
          deliver();
        });
      return me.queued <= hwm;
    },
    end() {
      me.ending = true;
      // After queued bytes are delivered, close both ends.
      void me.tail.then(() =>
        queueMicrotask(() => {
          close(me);
          close(me.peer!);
        }),
      );
    },
    destroy() {
      close(me);
      queueMicrotask(() => close(me.peer!));
    },
    onData: (fn) => {
      me.data.push(fn);
      const early = me.unread.splice(0);
      if (early.length > 0) queueMicrotask(() => early.forEach((c) => fn(c)));
    },
    pause: () => {},
    resume: () => {},
    onDrain: (fn) => me.drain.push(fn),
    // Each write is delivered in its own microtask either way: nothing to gather.
    cork: () => {},
    uncork: () => {},
    onClose: (fn) => me.close.push(fn),
    remoteAddress: remote,
    remotePort: 179,
    localAddress: local,
    localPort: 179,
  });
  const a = opts.a ?? '192.0.2.1';
  const b = opts.b ?? '192.0.2.2';
  return [transport(x, a, b), transport(y, b, a)];
}
