// NLMSG_ERROR: an acknowledgement (error 0) or a refusal (negative errno), with the
// extended-ack TLVs (the kernel's message, the offending attribute's offset) when the
// socket asked for them. With NETLINK_CAP_ACK the original request is not echoed back.
import {
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MISS_TYPE,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';

export interface Ack {
  /** 0 for success, else a negative errno. */
  readonly error: number;
  /** The sequence number of the request this answers. */
  readonly seq: number;
  readonly message?: string;
  readonly offset?: number;
  readonly missingType?: number;
}

const tlv = new AttrTable(8);

export function decodeAck(buf: Buffer, h: NlHeader): Ack {
  const p = h.start;
  if (h.end - p < 4 + NLMSG_HDRLEN) throw new NetlinkProtocolError('NLMSG_ERROR shorter than nlmsgerr');
  const error = buf.readInt32LE(p);
  const origLen = buf.readUInt32LE(p + 4);
  const seq = buf.readUInt32LE(p + 12);
  const out: { -readonly [K in keyof Ack]: Ack[K] } = { error, seq };
  if ((h.flags & NLM_F_ACK_TLVS) !== 0) {
    // the echoed request sits between the header and the TLVs unless capped
    let t = p + 4 + NLMSG_HDRLEN;
    if ((h.flags & NLM_F_CAPPED) === 0) t = p + 4 + ((origLen + 3) & ~3);
    if (t > h.end) throw new NetlinkProtocolError('NLMSG_ERROR echo overruns the message');
    tlv.parse(buf, t, h.end);
    const msg = tlv.string(buf, NLMSGERR_ATTR_MSG);
    if (msg !== undefined && msg.length > 0) out.message = msg;
    const offs = tlv.u32(buf, NLMSGERR_ATTR_OFFS);
    if (offs !== undefined) out.offset = offs;
    const miss = tlv.u32(buf, NLMSGERR_ATTR_MISS_TYPE);
    if (miss !== undefined) out.missingType = miss;
  }
  return out;
}
