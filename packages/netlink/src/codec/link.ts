// RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK: struct ifinfomsg, IFLA_* and IFLA_LINKINFO for the
// kinds Tabby creates (veth with its peer, vxlan, ipip, dummy).
import {
  AF_UNSPEC,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_IPTUN_LINK,
  IFLA_IPTUN_LOCAL,
  IFLA_IPTUN_REMOTE,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MAX_DECODED,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_OPERSTATE,
  IFLA_TXQLEN,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  RTEXT_FILTER_SKIP_STATS,
  RTM_GETLINK,
  VETH_INFO_PEER,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import { formatIp, formatMac, ipVersionOf } from './ip.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';
import type { NlWriter } from './writer.js';

/** Settings any link can take at creation or later. */
export interface LinkSettings {
  readonly mtu?: number;
  /** MAC address aa:bb:cc:dd:ee:ff. */
  readonly address?: string;
  /** Bring it up (true) or down (false); omitted leaves the state alone. */
  readonly up?: boolean;
  /** Move into the network namespace open at this fd (IFLA_NET_NS_FD). */
  readonly netnsFd?: number;
}

export interface VethPeer extends LinkSettings {
  readonly name: string;
}

export interface VxlanSettings {
  /** VNI. */
  readonly id: number;
  /** UDP destination port (Calico: 4789). */
  readonly port?: number;
  /** Source address of the encapsulated packets (the VTEP's underlay address). */
  readonly local?: string;
  /** MAC learning; Calico turns it off and programs FDB entries itself. */
  readonly learning?: boolean;
  /** Underlay device index. */
  readonly link?: number;
}

export interface IpipSettings {
  readonly local?: string;
  readonly remote?: string;
  readonly link?: number;
}

/** A link to create, by kind (a discriminated union). */
export type LinkSpec =
  | ({ readonly kind: 'veth'; readonly name: string; readonly peer: VethPeer } & LinkSettings)
  | ({ readonly kind: 'vxlan'; readonly name: string; readonly vxlan: VxlanSettings } & LinkSettings)
  | ({ readonly kind: 'ipip'; readonly name: string; readonly ipip?: IpipSettings } & LinkSettings)
  | ({ readonly kind: 'dummy'; readonly name: string } & LinkSettings);

/** Which link a request is about: its index, or its name. */
export type LinkRef = number | string;

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** ifi_flags (IFF_UP, IFF_LOWER_UP...). */
  readonly flags: number;
  readonly up: boolean;
  readonly mtu?: number;
  readonly address?: string;
  readonly kind?: string;
  readonly master?: number;
  /** IFLA_LINK: a veth's peer index, a tunnel's underlay... (in linkNetnsId's namespace if given). */
  readonly link?: number;
  readonly linkNetnsId?: number;
  readonly operstate?: number;
  readonly txqlen?: number;
  readonly vxlan?: VxlanSettings;
}

function writeIfinfo(w: NlWriter, index: number, s: LinkSettings): void {
  const h = w.fixed(IFINFOMSG_LEN);
  w.buf[h] = AF_UNSPEC;
  w.buf.writeInt32LE(index, h + 4);
  if (s.up !== undefined) {
    w.buf.writeUInt32LE(s.up ? IFF_UP : 0, h + 8);
    w.buf.writeUInt32LE(IFF_UP, h + 12);
  }
}

function writeSettings(w: NlWriter, s: LinkSettings): void {
  if (s.mtu !== undefined) w.u32(IFLA_MTU, s.mtu);
  if (s.address !== undefined) w.mac(IFLA_ADDRESS, s.address);
  if (s.netnsFd !== undefined) w.u32(IFLA_NET_NS_FD, s.netnsFd);
}

function checkName(name: string): void {
  if (
    name.length === 0 ||
    Buffer.byteLength(name) > 15 ||
    /[\s/:]/.test(name) ||
    name === '.' ||
    name === '..'
  )
    throw new TypeError(`invalid interface name ${JSON.stringify(name)} (1-15 bytes, no spaces, '/' or ':')`);
}

/** RTM_NEWLINK creating a link (flags: NLM_F_REQUEST|NLM_F_ACK|NLM_F_CREATE|NLM_F_EXCL as a rule). */
export function encodeNewLink(
  w: NlWriter,
  msgType: number,
  flags: number,
  seq: number,
  spec: LinkSpec,
): number {
  checkName(spec.name);
  const start = w.begin(msgType, flags, seq);
  writeIfinfo(w, 0, spec);
  w.string(IFLA_IFNAME, spec.name);
  writeSettings(w, spec);
  const info = w.nest(IFLA_LINKINFO);
  w.bareString(IFLA_INFO_KIND, spec.kind);
  switch (spec.kind) {
    case 'veth': {
      checkName(spec.peer.name);
      const data = w.nest(IFLA_INFO_DATA);
      const peer = w.nest(VETH_INFO_PEER);
      writeIfinfo(w, 0, spec.peer);
      w.string(IFLA_IFNAME, spec.peer.name);
      writeSettings(w, spec.peer);
      w.endNest(peer);
      w.endNest(data);
      break;
    }
    case 'vxlan': {
      const v = spec.vxlan;
      if (!Number.isInteger(v.id) || v.id < 0 || v.id >= 1 << 24) throw new TypeError(`invalid VNI ${v.id}`);
      const data = w.nest(IFLA_INFO_DATA);
      w.u32(IFLA_VXLAN_ID, v.id);
      if (v.link !== undefined) w.u32(IFLA_VXLAN_LINK, v.link);
      if (v.local !== undefined) {
        if (ipVersionOf(v.local) === 4) w.ip(IFLA_VXLAN_LOCAL, 4, v.local);
        else w.ip(IFLA_VXLAN_LOCAL6, 6, v.local);
      }
      if (v.learning !== undefined) w.u8(IFLA_VXLAN_LEARNING, v.learning ? 1 : 0);
      if (v.port !== undefined) w.be16(IFLA_VXLAN_PORT, v.port);
      w.endNest(data);
      break;
    }
    case 'ipip': {
      const t = spec.ipip;
      if (t !== undefined && (t.link !== undefined || t.local !== undefined || t.remote !== undefined)) {
        const data = w.nest(IFLA_INFO_DATA);
        if (t.link !== undefined) w.u32(IFLA_IPTUN_LINK, t.link);
        if (t.local !== undefined) w.ip(IFLA_IPTUN_LOCAL, 4, t.local);
        if (t.remote !== undefined) w.ip(IFLA_IPTUN_REMOTE, 4, t.remote);
        w.endNest(data);
      }
      break;
    }
    case 'dummy':
      break;
  }
  w.endNest(info);
  w.end(start);
  return start;
}

/** Changes to an existing link (RTM_NEWLINK without NLM_F_CREATE, as `ip link set` sends). */
export interface LinkChange extends LinkSettings {
  /** Rename. */
  readonly name?: string;
}

export function encodeSetLink(
  w: NlWriter,
  msgType: number,
  flags: number,
  seq: number,
  ref: LinkRef,
  c: LinkChange,
): number {
  const start = w.begin(msgType, flags, seq);
  writeIfinfo(w, typeof ref === 'number' ? ref : 0, c);
  if (typeof ref === 'string') {
    checkName(ref);
    w.string(IFLA_IFNAME, ref);
  }
  if (c.name !== undefined) {
    if (typeof ref === 'string') throw new TypeError('rename a link by its index, not its name');
    checkName(c.name);
    w.string(IFLA_IFNAME, c.name);
  }
  writeSettings(w, c);
  w.end(start);
  return start;
}

/** RTM_DELLINK, or RTM_GETLINK of one link, by index or name. */
export function encodeLinkRef(
  w: NlWriter,
  msgType: number,
  flags: number,
  seq: number,
  ref: LinkRef,
): number {
  const start = w.begin(msgType, flags, seq);
  writeIfinfo(w, typeof ref === 'number' ? ref : 0, {});
  if (typeof ref === 'string') {
    checkName(ref);
    w.string(IFLA_IFNAME, ref);
  }
  if (msgType === RTM_GETLINK) w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(start);
  return start;
}

export function encodeLinkDump(w: NlWriter, seq: number): number {
  const start = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
  w.fixed(IFINFOMSG_LEN);
  w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(start);
  return start;
}

const ifla = new AttrTable(IFLA_MAX_DECODED);
const info = new AttrTable(8);
const vx = new AttrTable(32);

export function decodeLink(buf: Buffer, h: NlHeader): LinkInfo {
  if (h.end - h.start < IFINFOMSG_LEN) throw new NetlinkProtocolError('link message shorter than ifinfomsg');
  const p = h.start;
  const index = buf.readInt32LE(p + 4);
  const flags = buf.readUInt32LE(p + 8);
  ifla.parse(buf, p + IFINFOMSG_LEN, h.end);
  const link: { -readonly [K in keyof LinkInfo]: LinkInfo[K] } = {
    index,
    name: ifla.string(buf, IFLA_IFNAME) ?? '',
    flags,
    up: (flags & IFF_UP) !== 0,
  };
  const mtu = ifla.u32(buf, IFLA_MTU);
  if (mtu !== undefined) link.mtu = mtu;
  const a = ifla.off[IFLA_ADDRESS]!;
  if (a >= 0) link.address = formatMac(buf, a, ifla.len[IFLA_ADDRESS]!);
  const master = ifla.u32(buf, IFLA_MASTER);
  if (master !== undefined) link.master = master;
  const l = ifla.s32(buf, IFLA_LINK);
  if (l !== undefined) link.link = l;
  const nsid = ifla.s32(buf, IFLA_LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = nsid;
  const op = ifla.u8(buf, IFLA_OPERSTATE);
  if (op !== undefined) link.operstate = op;
  const txq = ifla.u32(buf, IFLA_TXQLEN);
  if (txq !== undefined) link.txqlen = txq;
  const li = ifla.off[IFLA_LINKINFO]!;
  if (li >= 0) {
    info.parse(buf, li, li + ifla.len[IFLA_LINKINFO]!);
    const kind = info.string(buf, IFLA_INFO_KIND);
    if (kind !== undefined) link.kind = kind;
    const d = info.off[IFLA_INFO_DATA]!;
    if (kind === 'vxlan' && d >= 0) {
      vx.parse(buf, d, d + info.len[IFLA_INFO_DATA]!);
      const v: { -readonly [K in keyof VxlanSettings]: VxlanSettings[K] } = {
        id: vx.u32(buf, IFLA_VXLAN_ID) ?? 0,
      };
      const port = vx.be16(buf, IFLA_VXLAN_PORT);
      if (port !== undefined) v.port = port;
      const lo4 = vx.off[IFLA_VXLAN_LOCAL]!;
      const lo6 = vx.off[IFLA_VXLAN_LOCAL6]!;
      const local =
        lo4 >= 0
          ? formatIp(buf, lo4, vx.len[IFLA_VXLAN_LOCAL]!)
          : lo6 >= 0
            ? formatIp(buf, lo6, vx.len[IFLA_VXLAN_LOCAL6]!)
            : undefined;
      if (local !== undefined) v.local = local;
      const learning = vx.u8(buf, IFLA_VXLAN_LEARNING);
      if (learning !== undefined) v.learning = learning !== 0;
      const vl = vx.u32(buf, IFLA_VXLAN_LINK);
      if (vl !== undefined) v.link = vl;
      link.vxlan = v;
    }
  }
  return link;
}
