// Writing the 19-byte message header (RFC 4271 §4.1).

import type { Writer } from './buffer.js';
import { HEADER_LENGTH } from './framer.js';

const MARKER = new Uint8Array(16).fill(0xff);

/** Writes marker, a length placeholder and the type; the body follows. */
export function writeHeader(w: Writer, type: number): void {
  w.bytes(MARKER).u16(0).u8(type);
}

/** Fills in the length of a message that started at offset 0 and returns its bytes. */
export function patchLength(w: Writer, maxLength: number): Uint8Array {
  if (w.pos > maxLength) {
    throw new RangeError(`message of ${w.pos} bytes exceeds the ${maxLength}-byte limit`);
  }
  w.patchU16(16, w.pos);
  return w.finish();
}

/** Writes a whole header into b at off for a body of bodyLength bytes. */
export function putHeader(b: Uint8Array, off: number, type: number, bodyLength: number): void {
  b.fill(0xff, off, off + 16);
  const len = HEADER_LENGTH + bodyLength;
  b[off + 16] = len >>> 8;
  b[off + 17] = len;
  b[off + 18] = type;
}
