// ROUTE-REFRESH (RFC 2918 §3) with the Message Subtype of RFC 7313 §3.

import { Writer } from './buffer.js';
import { BgpNotification, ErrorCode, RouteRefreshSubcode } from './errors.js';
import { MessageType } from './framer.js';
import { patchLength, writeHeader } from './header.js';
import { readU16 } from './types.js';

/** RFC 7313 §3. */
export const RouteRefreshSubtype = { Normal: 0, BeginningOfRouteRefresh: 1, EndOfRouteRefresh: 2 } as const;

export interface RouteRefreshMessage {
  readonly type: 'routeRefresh';
  readonly afi: number;
  readonly safi: number;
  /** 0 normal, 1 BoRR, 2 EoRR; RFC 7313 §5: any other value is ignored by the receiver. */
  readonly subtype: number;
  /** Bytes after the fixed part (RFC 5291 ORF entries, subtype 0 only); we keep them unparsed. */
  readonly orf?: Uint8Array;
}

/** `frame` is the whole message: RFC 7313 §5 returns it as the error's data. */
export function decodeRouteRefresh(body: Uint8Array, frame: Uint8Array): RouteRefreshMessage {
  const subtype = body.length >= 3 ? (body[2] as number) : 0;
  // RFC 7313 §5: "If the length, excluding the fixed-size message header, of the received
  // ROUTE-REFRESH message with Message Subtype 1 and 2 is not 4, then the BGP speaker MUST
  // send a NOTIFICATION message with the Error Code of 'ROUTE-REFRESH Message Error' and the
  // subcode of 'Invalid Message Length'. The Data field of the NOTIFICATION message MUST
  // contain the complete ROUTE-REFRESH message."
  if (body.length < 4 || ((subtype === 1 || subtype === 2) && body.length !== 4)) {
    throw new BgpNotification(
      ErrorCode.RouteRefreshMessage,
      RouteRefreshSubcode.InvalidMessageLength,
      frame.slice(),
      `ROUTE-REFRESH of ${frame.length} bytes with subtype ${subtype}`,
    );
  }
  const base = { type: 'routeRefresh', afi: readU16(body, 0), safi: body[3] as number, subtype } as const;
  return body.length > 4 ? { ...base, orf: body.slice(4) } : base;
}

export function encodeRouteRefresh(m: RouteRefreshMessage, maxLength: number): Uint8Array {
  const w = new Writer(23);
  writeHeader(w, MessageType.RouteRefresh);
  w.u16(m.afi).u8(m.subtype).u8(m.safi);
  if (m.orf !== undefined) w.bytes(m.orf);
  return patchLength(w, maxLength);
}
