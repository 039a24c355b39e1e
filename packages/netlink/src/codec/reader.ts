// Bounded readers: netlink message framing and attribute tables. Every length read from
// the wire is checked against the enclosing bound before use; a malformed message throws
// NetlinkProtocolError instead of reading past it.
import { NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './constants.js';
import { NetlinkProtocolError } from './errors.js';

const align4 = (n: number): number => (n + 3) & ~3;

/** One message's header fields and its payload bounds in the buffer. */
export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Payload start (after the 16-byte header) and end (exclusive). */
  start: number;
  end: number;
}

/**
 * Walks the messages in buf[off, end): calls fn for each with a reused header object (copy
 * what you keep). Throws NetlinkProtocolError on a length that does not fit.
 */
export function forEachMessage(buf: Buffer, off: number, end: number, fn: (h: NlHeader) => void): void {
  const h: NlHeader = { type: 0, flags: 0, seq: 0, pid: 0, start: 0, end: 0 };
  while (off + NLMSG_HDRLEN <= end) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > end)
      throw new NetlinkProtocolError(`netlink message at ${off} claims ${len} bytes, ${end - off} left`);
    h.type = buf.readUInt16LE(off + 4);
    h.flags = buf.readUInt16LE(off + 6);
    h.seq = buf.readUInt32LE(off + 8);
    h.pid = buf.readUInt32LE(off + 12);
    h.start = off + NLMSG_HDRLEN;
    h.end = off + len;
    fn(h);
    off += align4(len);
  }
  if (off < end && end - off < NLMSG_HDRLEN && end - off > 0)
    throw new NetlinkProtocolError(`${end - off} trailing bytes after the last netlink message`);
}

/**
 * An attribute table: for types 0..max, the payload offset and length of the last
 * occurrence in a range (offset -1 when absent). Reused across messages to keep decoding
 * allocation-free; types above max are skipped (newer kernels add attributes).
 */
export class AttrTable {
  readonly off: Int32Array;
  readonly len: Int32Array;
  constructor(readonly max: number) {
    this.off = new Int32Array(max + 1);
    this.len = new Int32Array(max + 1);
  }

  parse(buf: Buffer, start: number, end: number): this {
    this.off.fill(-1);
    let p = start;
    while (p + NLA_HDRLEN <= end) {
      const len = buf.readUInt16LE(p);
      const type = buf.readUInt16LE(p + 2) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN || p + len > end)
        throw new NetlinkProtocolError(`attribute ${type} at ${p} claims ${len} bytes, ${end - p} left`);
      if (type <= this.max) {
        this.off[type] = p + NLA_HDRLEN;
        this.len[type] = len - NLA_HDRLEN;
      }
      p += align4(len);
    }
    return this;
  }

  has(type: number): boolean {
    return this.off[type]! >= 0;
  }

  u8(buf: Buffer, type: number): number | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    this.need(type, 1);
    return buf[o];
  }

  u16(buf: Buffer, type: number): number | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    this.need(type, 2);
    return buf.readUInt16LE(o);
  }

  be16(buf: Buffer, type: number): number | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    this.need(type, 2);
    return buf.readUInt16BE(o);
  }

  u32(buf: Buffer, type: number): number | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    this.need(type, 4);
    return buf.readUInt32LE(o);
  }

  s32(buf: Buffer, type: number): number | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    this.need(type, 4);
    return buf.readInt32LE(o);
  }

  /** A NUL-terminated (or unterminated) string. */
  string(buf: Buffer, type: number): string | undefined {
    const o = this.off[type]!;
    if (o < 0) return undefined;
    let e = o + this.len[type]!;
    const nul = buf.indexOf(0, o);
    if (nul >= 0 && nul < e) e = nul;
    return buf.toString('utf8', o, e);
  }

  private need(type: number, n: number): void {
    if (this.len[type]! < n)
      throw new NetlinkProtocolError(`attribute ${type} has ${this.len[type]} bytes, needs ${n}`);
  }
}
