// Accepting connections: only from configured peers (or configured ranges); any other
// source is closed at once, before a byte of BGP is exchanged.

import net from 'node:net';
import type { Transport } from './transport.js';
import { socketTransport } from './transport.js';

export interface ListenerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Who may connect: a transport for a configured peer, or undefined to refuse. */
  readonly route: (remoteAddress: string) => ((t: Transport) => void) | undefined;
  /** Called for each refused connection, for logs and counters. */
  readonly refused?: (remoteAddress: string) => void;
  /** Per-peer socket options on an accepted connection (GTSM), before BGP starts. */
  readonly configure?: (remoteAddress: string, socket: net.Socket) => void;
}

/** Strips the IPv4-mapped prefix Node gives IPv4 peers of a dual-stack socket. */
export function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class Listener {
  private server: net.Server | undefined;

  constructor(private readonly opts: ListenerOptions) {}

  /** The bound port (useful with port 0). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  get handle(): net.Server | undefined {
    return this.server;
  }

  listen(): Promise<void> {
    const server = net.createServer({ noDelay: true }, (s) => {
      const remote = normalizeAddress(s.remoteAddress ?? '');
      const accept = this.opts.route(remote);
      if (accept === undefined) {
        // Not a configured peer: closed before OPEN (a reset, not a polite FIN).
        s.resetAndDestroy();
        this.opts.refused?.(remote);
        return;
      }
      try {
        this.opts.configure?.(remote, s);
      } catch {
        s.resetAndDestroy();
        return;
      }
      accept(socketTransport(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    return new Promise((resolve) => (s === undefined ? resolve() : s.close(() => resolve())));
  }
}

/** Dials a peer over TCP; rejects with the socket error (ECONNREFUSED, timeout...). */
export function dialTcp(opts: {
  host: string;
  port: number;
  localAddress?: string;
  timeoutMs: number;
}): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const s = net.connect({
      host: opts.host,
      port: opts.port,
      noDelay: true,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${opts.host}:${opts.port} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(socketTransport(s));
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
