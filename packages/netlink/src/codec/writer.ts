// A growable Buffer writer for netlink messages: headers and attributes are written in
// place, lengths patched when a message or a nest ends. One writer encodes a whole batch,
// so the hot path allocates nothing per route but the occasional doubling of the buffer.
import { NLA_F_NESTED, NLA_HDRLEN, NLMSG_HDRLEN } from './constants.js';
import type { IpVersion } from './ip.js';
import { writeIp, writeMac } from './ip.js';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new Error(
    '@tabby/netlink encodes host-order netlink fields as little-endian; this host is big-endian',
  );

const align4 = (n: number): number => (n + 3) & ~3;

export class NlWriter {
  buf: Buffer;
  /** Bytes written so far (always 4-aligned between messages). */
  length = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.length = 0;
  }

  /** Room for n more bytes. */
  ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Starts a message; returns its offset, to pass to end(). */
  begin(type: number, flags: number, seq: number): number {
    this.ensure(NLMSG_HDRLEN + 256);
    const start = this.length;
    const b = this.buf;
    b.writeUInt16LE(type, start + 4);
    b.writeUInt16LE(flags, start + 6);
    b.writeUInt32LE(seq >>> 0, start + 8);
    b.writeUInt32LE(0, start + 12); // nlmsg_pid: 0, the kernel fills in the port
    this.length = start + NLMSG_HDRLEN;
    return start;
  }

  end(start: number): void {
    this.buf.writeUInt32LE(this.length - start, start);
  }

  /** Zeroed fixed header of n bytes (ifinfomsg, rtmsg...); returns its offset. */
  fixed(n: number): number {
    this.ensure(n);
    const at = this.length;
    this.buf.fill(0, at, at + n);
    this.length = at + align4(n);
    return at;
  }

  private attrHeader(type: number, payload: number): number {
    const total = NLA_HDRLEN + payload;
    this.ensure(align4(total));
    const at = this.length;
    this.buf.writeUInt16LE(total, at);
    this.buf.writeUInt16LE(type, at + 2);
    // zero the padding so captured bytes are deterministic
    for (let i = total; i < align4(total); i++) this.buf[at + i] = 0;
    this.length = at + align4(total);
    return at + NLA_HDRLEN;
  }

  u8(type: number, v: number): void {
    this.buf[this.attrHeader(type, 1)] = v;
  }

  u16(type: number, v: number): void {
    this.buf.writeUInt16LE(v, this.attrHeader(type, 2));
  }

  be16(type: number, v: number): void {
    this.buf.writeUInt16BE(v, this.attrHeader(type, 2));
  }

  u32(type: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, this.attrHeader(type, 4));
  }

  s32(type: number, v: number): void {
    this.buf.writeInt32LE(v, this.attrHeader(type, 4));
  }

  /** NUL-terminated string attribute. */
  string(type: number, s: string): void {
    const n = Buffer.byteLength(s);
    const at = this.attrHeader(type, n + 1);
    this.buf.write(s, at, 'utf8');
    this.buf[at + n] = 0;
  }

  /** String attribute without the NUL (as iproute2 writes IFLA_INFO_KIND). */
  bareString(type: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.buf.write(s, this.attrHeader(type, n), 'utf8');
  }

  ip(type: number, version: IpVersion, text: string): void {
    writeIp(this.buf, this.attrHeader(type, version === 4 ? 4 : 16), version, text);
  }

  mac(type: number, text: string): void {
    // length first (the attribute header needs it), then the bytes
    const n = text.split(':').length;
    const at = this.attrHeader(type, n);
    writeMac(this.buf, at, text);
  }

  bytes(type: number, data: Uint8Array): void {
    this.buf.set(data, this.attrHeader(type, data.length));
  }

  /**
   * Starts a nested attribute; returns its offset for endNest(). Without NLA_F_NESTED by
   * default, as iproute2 writes them (rtnetlink parses its nests leniently either way), so
   * our bytes equal ip's.
   */
  nest(type: number, flagged = false): number {
    this.ensure(NLA_HDRLEN);
    const at = this.length;
    this.buf.writeUInt16LE(flagged ? type | NLA_F_NESTED : type, at + 2);
    this.length = at + NLA_HDRLEN;
    return at;
  }

  endNest(at: number): void {
    this.buf.writeUInt16LE(this.length - at, at);
  }

  /** Raw bytes of everything written. */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}
