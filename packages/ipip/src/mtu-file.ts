// The pod MTU file: the node daemon writes the MTU pods should get (see mtu.ts: podMtu) and
// the CNI plugin reads it when its network config gives no MTU, as Calico's calico/node
// writes /var/lib/calico/mtu for its CNI plugin (cni-plugin/internal/pkg/utils/utils.go,
// MTUFromFile). This module imports nothing but node:fs and node:path: the CNI bundle takes
// it alone, as `@tabby/ipip/mtu-file`, without the rest of the package.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Where the pod MTU is written, and where the CNI plugin looks for it. */
export const DEFAULT_MTU_FILE = '/var/lib/tabby/mtu';

/** The smallest and largest MTU a link takes (IPv4's minimum, RFC 791; a 16-bit length). */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;

export const isMtu = (n: number): boolean => Number.isInteger(n) && n >= MIN_MTU && n <= MAX_MTU;

export function checkMtu(what: string, mtu: number): number {
  if (!isMtu(mtu)) throw new RangeError(`${what} ${mtu} is not an MTU (${MIN_MTU} to ${MAX_MTU})`);
  return mtu;
}

/**
 * The file's text as an MTU: a decimal number, surrounding whitespace ignored (Calico reads
 * it with strconv.Atoi(strings.TrimSpace(data))). Undefined when it holds no MTU.
 */
export function parseMtuText(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t)) return undefined;
  const n = Number(t);
  return isMtu(n) ? n : undefined;
}

/**
 * Writes the pod MTU (decimal text and a newline) where the CNI plugin reads it: to a
 * temporary file then renamed over the old one, so a plugin never reads half a number.
 * Returns false (and writes nothing) when the file already says so.
 */
export function writeMtuFile(mtu: number, path: string = DEFAULT_MTU_FILE): boolean {
  checkMtu('pod MTU', mtu);
  if (readMtuFile(path) === mtu) return false;
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${mtu}\n`, { mode: 0o644 });
  renameSync(tmp, path);
  return true;
}

/** The MTU in the file, or undefined when there is no file or it holds no valid MTU. */
export function readMtuFile(path: string = DEFAULT_MTU_FILE): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseMtuText(text);
}
