// CNI spec versions: which ones the plugins speak, and ordering (libcni's pkg/version).
import { CniError, ErrorCode } from './errors.js';

export const CURRENT_VERSION = '1.1.0';

/** 0.1.0 and 0.2.0 (the pre-"ips" result) are not supported: no runtime of this decade sends them. */
export const SUPPORTED_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** [major, minor, patch]; a missing version means 0.1.0, as libcni reads it. */
export function parseVersion(v: string): [number, number, number] | undefined {
  if (v === '') return [0, 1, 0];
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(v);
  if (m === null) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** a >= b; both must parse. */
export function versionAtLeast(a: string, b: string): boolean {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (x === undefined || y === undefined) return false;
  for (let i = 0; i < 3; i++) if (x[i]! !== y[i]!) return x[i]! > y[i]!;
  return true;
}

/** Code 1 unless `v` is one of SUPPORTED_VERSIONS (exact match, as libcni's reconciler). */
export function requireSupported(v: string): void {
  if (!SUPPORTED_VERSIONS.includes(v))
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      'incompatible CNI versions',
      `config is ${JSON.stringify(v === '' ? '0.1.0' : v)}, plugin supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
}

/** Code 1 unless the config's version is at least `min` (CHECK: 0.4.0, GC and STATUS: 1.1.0). */
export function requireAtLeast(v: string, min: string, command: string): void {
  if (!versionAtLeast(v, min))
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `config version ${v} does not allow ${command}`,
      `${command} needs cniVersion ${min} or later`,
    );
}

/** 0.3.x and 0.4.0 results carry `ips[].version`; 1.0.0 and later do not. */
export const hasIpVersionField = (v: string): boolean => !versionAtLeast(v, '1.0.0');
