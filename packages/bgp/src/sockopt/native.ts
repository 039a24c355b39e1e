// Loading the addon (build/Release/bgp_sockopt.node, built by node-gyp on install) and the
// one place that reaches into Node for a socket's file descriptor.

import { createRequire } from 'node:module';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { SockoptError, SockoptUnavailableError } from './errors.js';

/** What native/sockopt.c exports; -1 and null mean "not set". */
export interface NativeSockopt {
  prepare(
    family: 4 | 6,
    peer: string,
    key: Uint8Array | null,
    ttl: number,
    minTtl: number,
    device: string | null,
    localAddress: string | null,
    localPort: number,
  ): number;
  setMd5(fd: number, peer: string, key: Uint8Array | null, prefixLength: number): boolean;
  setTtl(fd: number, ttl: number): void;
  setMinTtl(fd: number, minTtl: number): void;
  bindToDevice(fd: number, name: string): void;
  getOptions(fd: number): SocketOptions;
}

/** The options as the kernel reports them (TCP-MD5 keys cannot be read back). */
export interface SocketOptions {
  family: 4 | 6;
  /** IP_TTL */
  ttl: number;
  /** IP_MINTTL (0: off) */
  minTtl: number;
  /** IPV6_UNICAST_HOPS, IPv6 sockets only */
  hopLimit?: number;
  /** IPV6_MINHOPCOUNT, IPv6 sockets only */
  minHopCount?: number;
  /** SO_BINDTODEVICE ('' when not bound) */
  device: string;
}

/** From dist/src/sockopt/ to the package root's build/Release/. */
export const ADDON_PATH = fileURLToPath(new URL('../../../build/Release/bgp_sockopt.node', import.meta.url));

let loaded: NativeSockopt | SockoptUnavailableError | undefined;

function load(): NativeSockopt | SockoptUnavailableError {
  if (process.platform !== 'linux') {
    return new SockoptUnavailableError(
      `bgp-ts: TCP-MD5 and GTSM socket options are implemented for Linux only, not ${process.platform}`,
      ADDON_PATH,
    );
  }
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as NativeSockopt;
  } catch (e) {
    const missing = (e as { code?: unknown }).code === 'MODULE_NOT_FOUND';
    return new SockoptUnavailableError(
      missing
        ? `bgp-ts: the native socket-option addon ${ADDON_PATH} is missing, so TCP-MD5 (RFC 2385) ` +
            `and GTSM (RFC 5082) cannot be set; node-gyp builds it when bgp-ts is installed ` +
            `(run \`npm rebuild bgp-ts\`; it needs python3, make and a C compiler)`
        : `bgp-ts: the native socket-option addon ${ADDON_PATH} does not load: ${(e as Error).message}`,
      ADDON_PATH,
      { cause: e },
    );
  }
}

/** The addon, or throws SockoptUnavailableError saying what is missing. */
export function native(): NativeSockopt {
  loaded ??= load();
  if (loaded instanceof SockoptUnavailableError) throw loaded;
  return loaded;
}

/** True when the addon loads (TCP-MD5 and GTSM can be used). */
export function sockoptAvailable(): boolean {
  loaded ??= load();
  return !(loaded instanceof SockoptUnavailableError);
}

/** Runs a native call, turning the addon's errno errors into SockoptError. */
export function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const x = e as { errno?: unknown; syscall?: unknown; option?: unknown; message?: unknown };
    if (typeof x.errno === 'number' && typeof x.option === 'string' && typeof x.syscall === 'string') {
      throw new SockoptError({
        message: String(x.message),
        code: getSystemErrorName(-x.errno),
        errno: x.errno,
        syscall: x.syscall,
        option: x.option,
      });
    }
    throw e;
  }
}

/** A socket, server or raw file descriptor. */
export type SocketLike = net.Socket | net.Server | number;

/**
 * The file descriptor under a net.Socket or a listening net.Server. Node has no public API
 * for it; `_handle.fd` is the TCPWrap's descriptor on Unix, and this is the one place that
 * relies on it.
 */
export function socketFd(target: SocketLike): number {
  if (typeof target === 'number') {
    if (!Number.isInteger(target) || target < 0) throw new RangeError(`not a file descriptor: ${target}`);
    return target;
  }
  const handle = (target as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new TypeError(
      'bgp-ts sockopt: this socket or server has no file descriptor (not listening or connected yet, or closed)',
    );
  }
  return fd;
}
