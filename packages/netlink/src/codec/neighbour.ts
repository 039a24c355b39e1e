// RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH: struct ndmsg and NDA_*: ARP/NDP entries
// (family 4 or 6) and bridge FDB entries (family 'bridge'), e.g. a VXLAN device's
// "remote MAC -> remote VTEP" entries that Calico programs instead of learning.
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  NDA_DST,
  NDA_IFINDEX,
  NDA_LLADDR,
  NDA_MASTER,
  NDA_MAX_DECODED,
  NDA_PORT,
  NDA_VLAN,
  NDA_VNI,
  NDMSG_LEN,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NUD_PERMANENT,
  RTM_GETNEIGH,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import type { IpVersion } from './ip.js';
import { formatIp, formatMac, ipVersionOf } from './ip.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';
import type { NlWriter } from './writer.js';

export type NeighbourFamily = IpVersion | 'bridge';

export interface NeighbourSpec {
  readonly family: NeighbourFamily;
  readonly index: number;
  /** The IP address (ARP/NDP), or for an FDB entry the remote VTEP. */
  readonly dst?: string;
  /** MAC address. */
  readonly lladdr?: string;
  /** NUD_* (default NUD_PERMANENT). */
  readonly state?: number;
  /** NTF_* (FDB entries on a vxlan device: NTF_SELF). */
  readonly flags?: number;
  readonly vni?: number;
  readonly port?: number;
  readonly vlan?: number;
  readonly master?: number;
}

export interface NeighbourInfo {
  readonly family: NeighbourFamily;
  readonly index: number;
  readonly state: number;
  readonly flags: number;
  readonly dst?: string;
  readonly lladdr?: string;
  readonly vni?: number;
  readonly port?: number;
  readonly vlan?: number;
  readonly master?: number;
}

const afOf = (f: NeighbourFamily): number => (f === 'bridge' ? AF_BRIDGE : f === 4 ? AF_INET : AF_INET6);

export function encodeNeighbour(
  w: NlWriter,
  msgType: number,
  flags: number,
  seq: number,
  n: NeighbourSpec,
): number {
  const start = w.begin(msgType, flags, seq);
  const h = w.fixed(NDMSG_LEN);
  w.buf[h] = afOf(n.family);
  w.buf.writeInt32LE(n.index, h + 4);
  w.buf.writeUInt16LE(n.state ?? NUD_PERMANENT, h + 8);
  w.buf[h + 10] = n.flags ?? 0;
  if (n.dst !== undefined) w.ip(NDA_DST, n.family === 'bridge' ? ipVersionOf(n.dst) : n.family, n.dst);
  if (n.lladdr !== undefined) w.mac(NDA_LLADDR, n.lladdr);
  if (n.vlan !== undefined) w.u16(NDA_VLAN, n.vlan);
  if (n.port !== undefined) w.be16(NDA_PORT, n.port);
  if (n.vni !== undefined) w.u32(NDA_VNI, n.vni);
  if (n.master !== undefined) w.u32(NDA_MASTER, n.master);
  w.end(start);
  return start;
}

export function encodeNeighbourDump(
  w: NlWriter,
  seq: number,
  family?: NeighbourFamily,
  index?: number,
): number {
  const start = w.begin(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const h = w.fixed(NDMSG_LEN);
  w.buf[h] = family === undefined ? 0 : afOf(family);
  // strict dumps filter on NDA_IFINDEX, not on ndm_ifindex
  if (index !== undefined) w.u32(NDA_IFINDEX, index);
  w.end(start);
  return start;
}

const nda = new AttrTable(NDA_MAX_DECODED);

export function decodeNeighbour(buf: Buffer, h: NlHeader): NeighbourInfo | undefined {
  if (h.end - h.start < NDMSG_LEN) throw new NetlinkProtocolError('neighbour message shorter than ndmsg');
  const p = h.start;
  const af = buf[p]!;
  const family: NeighbourFamily | undefined =
    af === AF_INET ? 4 : af === AF_INET6 ? 6 : af === AF_BRIDGE ? 'bridge' : undefined;
  if (family === undefined) return undefined;
  nda.parse(buf, p + NDMSG_LEN, h.end);
  const out: { -readonly [K in keyof NeighbourInfo]: NeighbourInfo[K] } = {
    family,
    index: buf.readInt32LE(p + 4),
    state: buf.readUInt16LE(p + 8),
    flags: buf[p + 10]!,
  };
  const d = nda.off[NDA_DST]!;
  if (d >= 0) {
    const dst = formatIp(buf, d, nda.len[NDA_DST]!);
    if (dst !== undefined) out.dst = dst;
  }
  const l = nda.off[NDA_LLADDR]!;
  if (l >= 0) out.lladdr = formatMac(buf, l, nda.len[NDA_LLADDR]!);
  const vni = nda.u32(buf, NDA_VNI);
  if (vni !== undefined) out.vni = vni;
  const port = nda.be16(buf, NDA_PORT);
  if (port !== undefined) out.port = port;
  const vlan = nda.u16(buf, NDA_VLAN);
  if (vlan !== undefined) out.vlan = vlan;
  const master = nda.u32(buf, NDA_MASTER);
  if (master !== undefined) out.master = master;
  return out;
}
