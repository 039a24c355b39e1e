/**
 * Socket options for BGP sessions that Node's net module cannot set (Linux only), through
 * the small Node-API addon in native/sockopt.c:
 *
 * - TCP-MD5 signatures, RFC 2385 (Linux `TCP_MD5SIG`, `TCP_MD5SIG_EXT`)
 * - GTSM, the Generalized TTL Security Mechanism, RFC 5082 (`IP_TTL`, `IPV6_UNICAST_HOPS`,
 *   `IP_MINTTL`, `IPV6_MINHOPCOUNT`)
 * - `SO_BINDTODEVICE`
 *
 * A listener is a plain `net.Server`: `listen()`, then `setMd5Key()` per peer and
 * `setTtl()` / `setMinTtl()` for GTSM; accepted sockets inherit all of it. An active open is
 * `connectTcp()`, which puts the options on the socket before the SYN.
 *
 * If the addon was not built every function throws `SockoptUnavailableError` naming the
 * missing file, so a session configured with a password fails loudly rather than running
 * without MD5.
 *
 * @example
 * ```ts
 * const server = net.createServer(onConnection).listen(179, '::');
 * await once(server, 'listening');
 * setMd5Key(server, '192.0.2.1', 'tor-secret');    // the peer's address, IPv4 or IPv6
 * setTtl(server, 255); setMinTtl(server, gtsmMinTtl(1));
 * const socket = await connectTcp({ host: '192.0.2.1', port: 179, md5Key: 'tor-secret',
 *   ttl: 255, minTtl: 255, timeoutMs: 5000 });
 * ```
 * @packageDocumentation
 */

import net from 'node:net';
import { closeSync } from 'node:fs';
import { ConnectTimeoutError } from './errors.js';
import type { SocketLike, SocketOptions } from './native.js';
import { call, native, socketFd } from './native.js';

export { ConnectTimeoutError, SockoptError, SockoptUnavailableError } from './errors.js';
export type { SocketLike, SocketOptions } from './native.js';
export { ADDON_PATH, socketFd, sockoptAvailable } from './native.js';

/** Linux's TCP_MD5SIG_MAXKEYLEN: the longest key the kernel takes, in bytes. */
export const MD5_MAX_KEY_LENGTH = 80;

/** RFC 5082 §3: a GTSM speaker sends with TTL (hop limit) 255. */
export const GTSM_TTL = 255;

/**
 * RFC 5082 §3: the lowest TTL to accept from a peer `hops` hops away (1 = directly
 * connected, 255), i.e. 256 - hops. Calico's BGPPeer `ttlSecurity` is such a hop count.
 */
export function gtsmMinTtl(hops: number): number {
  if (!Number.isInteger(hops) || hops < 1 || hops > 255)
    throw new RangeError(`GTSM hops ${hops} not in 1..255`);
  return 256 - hops;
}

/** A key as the kernel takes it: a string's UTF-8 bytes (as BIRD, FRR and Junos use them) or bytes. */
function keyBytes(key: string | Uint8Array): Uint8Array {
  const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (b.length === 0) throw new RangeError('TCP-MD5 key is empty (use null to remove a key)');
  if (b.length > MD5_MAX_KEY_LENGTH) {
    throw new RangeError(`TCP-MD5 key is ${b.length} bytes; Linux takes at most ${MD5_MAX_KEY_LENGTH}`);
  }
  return b;
}

function ipFamily(address: string, what: string): 4 | 6 {
  const f = net.isIP(address);
  if (f === 0) throw new TypeError(`${what} ${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
  return f as 4 | 6;
}

function checkByte(n: number, min: number, what: string): number {
  if (!Number.isInteger(n) || n < min || n > 255) throw new RangeError(`${what} ${n} not in ${min}..255`);
  return n;
}

function checkDevice(name: string): string {
  // IFNAMSIZ is 16 with the terminating NUL.
  if (name.length === 0 || Buffer.byteLength(name) > 15 || name.includes('\0')) {
    throw new RangeError(`interface name ${JSON.stringify(name)} is not 1..15 bytes`);
  }
  return name;
}

/**
 * Installs (`key` given) or removes (`key` null) the TCP-MD5 key for one peer, RFC 2385,
 * with Linux `TCP_MD5SIG` (`TCP_MD5SIG_EXT` with `TCP_MD5SIG_FLAG_PREFIX` when
 * `prefixLength` is given: one key for a whole prefix of peers).
 *
 * On a listening server this is the passive side: from then on the kernel drops every SYN
 * from that address that is unsigned or signed with another key, and a connection it accepts
 * carries the key. On a dual-stack server (listening on `::`) an IPv4 peer is filed as
 * `::ffff:a.b.c.d`, as Linux requires. Keys are 1 to 80 bytes (`TCP_MD5SIG_MAXKEYLEN`).
 *
 * @returns true; false when removing a key that was not installed.
 * @throws SockoptError (`option` `TCP_MD5SIG`), SockoptUnavailableError
 */
export function setMd5Key(
  target: SocketLike,
  peerAddress: string,
  key: string | Uint8Array | null,
  options: { prefixLength?: number | undefined } = {},
): boolean {
  const family = ipFamily(peerAddress, 'TCP-MD5 peer address');
  const bytes = key === null ? null : keyBytes(key);
  let prefix = -1;
  if (options.prefixLength !== undefined) {
    prefix = options.prefixLength;
    const max = family === 4 ? 32 : 128;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new RangeError(`prefix length ${prefix} not in 0..${max}`);
    }
  }
  const fd = socketFd(target);
  const addon = native();
  return call(() => addon.setMd5(fd, peerAddress, bytes, prefix));
}

/**
 * Sets the TTL / hop limit of everything the socket sends: RFC 5082 §3 has a GTSM speaker
 * send with 255 ({@link GTSM_TTL}). Linux `IP_TTL`, and on an IPv6 socket
 * `IPV6_UNICAST_HOPS` as well (a dual-stack socket sends IPv4 with IP_TTL). Set on a
 * listener it covers the SYN-ACK and is inherited by accepted sockets.
 *
 * @throws SockoptError (`option` `IP_TTL` / `IPV6_UNICAST_HOPS`), SockoptUnavailableError
 */
export function setTtl(target: SocketLike, ttl: number): void {
  checkByte(ttl, 1, 'TTL');
  const fd = socketFd(target);
  const addon = native();
  call(() => addon.setTtl(fd, ttl));
}

/**
 * GTSM's receive check, RFC 5082 §3: the kernel drops every packet (SYNs included) that
 * arrives with a TTL / hop limit below `minTtl`; 255 for a directly connected peer
 * ({@link gtsmMinTtl}), 0 turns the check off. Linux `IP_MINTTL`, and on an IPv6 socket
 * `IPV6_MINHOPCOUNT` as well. Set on a listener it is inherited by accepted sockets.
 *
 * @throws SockoptError (`option` `IP_MINTTL` / `IPV6_MINHOPCOUNT`), SockoptUnavailableError
 */
export function setMinTtl(target: SocketLike, minTtl: number): void {
  checkByte(minTtl, 0, 'minimum TTL');
  const fd = socketFd(target);
  const addon = native();
  call(() => addon.setMinTtl(fd, minTtl));
}

/**
 * Pins the socket to one interface (Linux `SO_BINDTODEVICE`), or unbinds it with null. Binding
 * a socket not yet bound needs no privilege since Linux 5.7; changing or removing a binding
 * (and any binding before 5.7) needs CAP_NET_RAW. Mostly useful for link-local (BGP
 * unnumbered) peers and VRFs.
 *
 * @throws SockoptError (`option` `SO_BINDTODEVICE`; `ENODEV` for an unknown interface, `EPERM`
 *   without the capability), SockoptUnavailableError
 */
export function bindToDevice(target: SocketLike, device: string | null): void {
  const name = device === null ? '' : checkDevice(device);
  const fd = socketFd(target);
  const addon = native();
  call(() => addon.bindToDevice(fd, name));
}

/** Reads back TTL, minimum TTL, hop limits and the bound device, for checks and logs. */
export function getSocketOptions(target: SocketLike): SocketOptions {
  const fd = socketFd(target);
  const addon = native();
  return call(() => addon.getOptions(fd));
}

export interface ConnectOptions {
  /** The peer, an IPv4 or IPv6 address (`fe80::1%eth0` for link-local). */
  host: string;
  port: number;
  /** Source address; of the host's family (an IPv4 one is mapped for an IPv6 host). */
  localAddress?: string | undefined;
  localPort?: number | undefined;
  /** RFC 2385 key for this peer (`TCP_MD5SIG`), 1 to 80 bytes. */
  md5Key?: string | Uint8Array | undefined;
  /** RFC 5082: TTL / hop limit to send with (`IP_TTL`, `IPV6_UNICAST_HOPS`); GTSM uses 255. */
  ttl?: number | undefined;
  /** RFC 5082: drop replies below this TTL (`IP_MINTTL`, `IPV6_MINHOPCOUNT`). */
  minTtl?: number | undefined;
  /** `SO_BINDTODEVICE` before bind and connect. */
  bindDevice?: string | undefined;
  /** Rejects with ConnectTimeoutError when not connected by then. */
  timeoutMs: number;
  /** Aborting rejects with the signal's reason and closes the socket. */
  signal?: AbortSignal | undefined;
}

/**
 * Active open with the options set before connect(): the RFC 2385 key must be on the socket
 * before the SYN is sent, and GTSM's TTL applies to the SYN too. The addon creates a
 * non-blocking socket, sets `SO_BINDTODEVICE`, `IP_TTL`/`IPV6_UNICAST_HOPS`,
 * `IP_MINTTL`/`IPV6_MINHOPCOUNT` and `TCP_MD5SIG` (keyed on `host`), binds it when a local
 * address or port is given, and returns its descriptor; Node then wraps that descriptor and
 * connects it on its own event loop, so a connect that hangs (a peer dropping our SYNs)
 * holds no thread.
 *
 * A wrong or missing key, or a TTL below the peer's minimum, shows as ConnectTimeoutError:
 * the peer's kernel drops the SYNs silently.
 *
 * @throws TypeError / RangeError for bad options; SockoptError when an option or bind fails;
 *   SockoptUnavailableError when the addon is missing; ConnectTimeoutError; and the
 *   socket's own errors (ECONNREFUSED, ...).
 */
export async function connectTcp(opts: ConnectOptions): Promise<net.Socket> {
  const { host, port, timeoutMs, signal } = opts;
  const family = ipFamily(host, 'host');
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new RangeError(`port ${port} not in 1..65535`);
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs))
    throw new RangeError(`timeoutMs ${timeoutMs} is not > 0`);
  const key = opts.md5Key === undefined ? null : keyBytes(opts.md5Key);
  const ttl = opts.ttl === undefined ? -1 : checkByte(opts.ttl, 1, 'TTL');
  const minTtl = opts.minTtl === undefined ? -1 : checkByte(opts.minTtl, 0, 'minimum TTL');
  const device = opts.bindDevice === undefined ? null : checkDevice(opts.bindDevice);
  const localAddress = opts.localAddress ?? null;
  if (localAddress !== null) ipFamily(localAddress, 'localAddress');
  const localPort = opts.localPort ?? -1;
  if (localPort !== -1 && (!Number.isInteger(localPort) || localPort < 0 || localPort > 65535)) {
    throw new RangeError(`localPort ${localPort} not in 0..65535`);
  }
  signal?.throwIfAborted();
  const addon = native();

  const fd = call(() => addon.prepare(family, host, key, ttl, minTtl, device, localAddress, localPort));
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return new Promise<net.Socket>((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', settle);
      socket.off('connect', onConnect);
      if (err === undefined) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onConnect = () => settle(undefined);
    const onAbort = () => {
      const reason: unknown = signal?.reason;
      settle(reason instanceof Error ? reason : new Error('connect aborted', { cause: reason }));
    };
    const timer = setTimeout(() => settle(new ConnectTimeoutError(host, port, timeoutMs)), timeoutMs);
    socket.once('error', settle);
    socket.once('connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
    // net.Socket#connect() connects the handle the socket already wraps (uv_tcp_connect on
    // our descriptor). Should a Node release ever open a new socket instead, the options
    // would be lost: refuse rather than connect without MD5.
    try {
      socket.connect({ host, port });
    } catch (e) {
      settle(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (socketFdOrNull(socket) !== fd) {
      settle(
        new Error('bgp-ts sockopt: Node did not connect the prepared socket; refusing to connect without it'),
      );
    }
  });
}

function socketFdOrNull(socket: net.Socket): number | null {
  try {
    return socketFd(socket);
  } catch {
    return null;
  }
}
