// RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR: struct ifaddrmsg and IFA_*.
import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFA_MAX_DECODED,
  IFADDRMSG_LEN,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  RT_SCOPE_UNIVERSE,
  RTM_GETADDR,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import type { IpVersion } from './ip.js';
import { formatIp } from './ip.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';
import type { NlWriter } from './writer.js';

export interface AddressSpec {
  readonly family: IpVersion;
  /** Interface index. */
  readonly index: number;
  readonly address: string;
  readonly prefixLen: number;
  /** Default universe. */
  readonly scope?: number;
  /** IFA_F_* (e.g. IFA_F_NODAD, IFA_F_NOPREFIXROUTE). */
  readonly flags?: number;
  readonly label?: string;
}

export interface AddressInfo {
  readonly family: IpVersion;
  readonly index: number;
  readonly address: string;
  readonly prefixLen: number;
  readonly scope: number;
  readonly flags: number;
  /** The point-to-point peer (IFA_ADDRESS when it differs from IFA_LOCAL). */
  readonly peer?: string;
  readonly label?: string;
}

export function encodeAddress(
  w: NlWriter,
  msgType: number,
  flags: number,
  seq: number,
  a: AddressSpec,
): number {
  const max = a.family === 4 ? 32 : 128;
  if (!Number.isInteger(a.prefixLen) || a.prefixLen < 0 || a.prefixLen > max)
    throw new TypeError(`invalid prefix length ${a.prefixLen} for IPv${a.family}`);
  const start = w.begin(msgType, flags, seq);
  const h = w.fixed(IFADDRMSG_LEN);
  const f = a.flags ?? 0;
  w.buf[h] = a.family === 4 ? AF_INET : AF_INET6;
  w.buf[h + 1] = a.prefixLen;
  w.buf[h + 2] = f & 0xff;
  w.buf[h + 3] = a.scope ?? RT_SCOPE_UNIVERSE;
  w.buf.writeUInt32LE(a.index, h + 4);
  w.ip(IFA_LOCAL, a.family, a.address);
  w.ip(IFA_ADDRESS, a.family, a.address);
  if (a.label !== undefined) w.string(IFA_LABEL, a.label);
  if (f > 0xff) w.u32(IFA_FLAGS, f);
  w.end(start);
  return start;
}

export function encodeAddressDump(w: NlWriter, seq: number, family?: IpVersion, index?: number): number {
  const start = w.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const h = w.fixed(IFADDRMSG_LEN);
  w.buf[h] = family === undefined ? 0 : family === 4 ? AF_INET : AF_INET6;
  if (index !== undefined) w.buf.writeUInt32LE(index, h + 4);
  w.end(start);
  return start;
}

const ifa = new AttrTable(IFA_MAX_DECODED);

export function decodeAddress(buf: Buffer, h: NlHeader): AddressInfo | undefined {
  if (h.end - h.start < IFADDRMSG_LEN)
    throw new NetlinkProtocolError('address message shorter than ifaddrmsg');
  const p = h.start;
  const af = buf[p]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  ifa.parse(buf, p + IFADDRMSG_LEN, h.end);
  const ao = ifa.off[IFA_ADDRESS]!;
  const lo = ifa.off[IFA_LOCAL]!;
  const address =
    ao >= 0
      ? formatIp(buf, ao, ifa.len[IFA_ADDRESS]!)
      : lo >= 0
        ? formatIp(buf, lo, ifa.len[IFA_LOCAL]!)
        : undefined;
  if (address === undefined) throw new NetlinkProtocolError('address message without an address');
  const local = lo >= 0 ? formatIp(buf, lo, ifa.len[IFA_LOCAL]!) : undefined;
  const out: { -readonly [K in keyof AddressInfo]: AddressInfo[K] } = {
    family: af === AF_INET ? 4 : 6,
    index: buf.readUInt32LE(p + 4),
    address: local ?? address,
    prefixLen: buf[p + 1]!,
    scope: buf[p + 3]!,
    flags: ifa.u32(buf, IFA_FLAGS) ?? buf[p + 2]!,
  };
  if (local !== undefined && local !== address) out.peer = address;
  const label = ifa.string(buf, IFA_LABEL);
  if (label !== undefined) out.label = label;
  return out;
}
