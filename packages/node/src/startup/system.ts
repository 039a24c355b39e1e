// The little start-up needs from the operating system besides the network: the nodename
// file, the host name, and whether IPv6 is compiled in. Injected, so tests use a table.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface StartupSystem {
  /** A file's text; undefined when it does not exist (other errors throw). */
  readFile(path: string): string | undefined;
  /** Writes a file, creating its directory (Calico's /var/lib/calico) if needed. */
  writeFile(path: string, text: string): void;
  hostname(): string;
  /** /proc/sys/net/ipv6 exists: the kernel has IPv6 (startup_linux.go:89). */
  ipv6Available(): boolean;
}

export const localSystem: StartupSystem = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  writeFile(path, text) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text, { mode: 0o644 });
  },
  hostname: () => hostname(),
  ipv6Available: () => existsSync('/proc/sys/net/ipv6'),
};
