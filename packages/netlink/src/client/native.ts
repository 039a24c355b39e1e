// Loads the tabby_netlink addon (native/netlink.c, built by node-gyp when the package is
// installed). Everything else in this package is TypeScript.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An opaque uv_poll handle from watch(). */
export type WatchHandle = { readonly __watch: unique symbol };

export interface NativeNetlink {
  open(nsPath: string | null, groups: number, rcvbuf: number, sndbuf: number): number;
  send(fd: number, buf: Buffer, length: number): number;
  recv(fd: number, buf: Buffer, status: Int32Array): number;
  close(fd: number): void;
  watch(fd: number, onReadable: () => void): WatchHandle;
  unwatch(handle: WatchHandle): void;
  ref(handle: WatchHandle, on: boolean): void;
  sysctl(nsPath: string | null, path: string, value: string | null): string;
}

/** An addon call failed: errno (positive) and the syscall. */
export interface NativeError extends Error {
  readonly errno?: number;
  readonly syscall?: string;
}

/** From dist/src/client/ to the package root's build/Release/. */
export const NETLINK_ADDON_PATH = fileURLToPath(
  new URL('../../../build/Release/tabby_netlink.node', import.meta.url),
);

export class NetlinkUnavailableError extends Error {
  override readonly name = 'NetlinkUnavailableError';
}

let loaded: NativeNetlink | NetlinkUnavailableError | undefined;

function load(): NativeNetlink | NetlinkUnavailableError {
  if (process.platform !== 'linux')
    return new NetlinkUnavailableError(`netlink exists on Linux only, not ${process.platform}`);
  try {
    return createRequire(import.meta.url)(NETLINK_ADDON_PATH) as NativeNetlink;
  } catch (e) {
    const missing = (e as { code?: unknown }).code === 'MODULE_NOT_FOUND';
    return new NetlinkUnavailableError(
      missing
        ? `the netlink addon ${NETLINK_ADDON_PATH} is missing; node-gyp builds it when @tabby/netlink is ` +
            `installed (run \`npm rebuild @tabby/netlink\`; it needs python3, make and a C compiler)`
        : `the netlink addon ${NETLINK_ADDON_PATH} does not load: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The addon, or throws NetlinkUnavailableError saying what is missing. */
export function netlinkAddon(): NativeNetlink {
  loaded ??= load();
  if (loaded instanceof NetlinkUnavailableError) throw loaded;
  return loaded;
}
