// The captured iproute2 request vectors (vectors/ip-captures.json, with their source).
import { readFileSync } from 'node:fs';

interface VectorFile {
  readonly source: string;
  readonly vectors: readonly { readonly command: string; readonly hex: string }[];
}

const file = JSON.parse(
  readFileSync(new URL('../../test/vectors/ip-captures.json', import.meta.url), 'utf8'),
) as VectorFile;

/** The request bytes `ip` sent for a command (exactly as listed in the file). */
export function ipVector(command: string): Buffer {
  const v = file.vectors.find((x) => x.command === command);
  if (v === undefined) throw new Error(`no captured vector for ${command}`);
  return Buffer.from(v.hex, 'hex');
}

/** The nlmsg_seq ip used in a vector. */
export function seqOf(b: Buffer): number {
  return b.readUInt32LE(8);
}
