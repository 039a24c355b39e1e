// NOTIFICATION (RFC 4271 §4.5), with the shutdown communication of RFC 9003 and the
// encapsulated NOTIFICATION of an RFC 8538 Hard Reset.

import { Writer } from './buffer.js';
import type { BgpNotification } from './errors.js';
import { CeaseSubcode, ErrorCode, errorCodeName, errorSubcodeName } from './errors.js';
import { MessageType } from './framer.js';
import { patchLength, writeHeader } from './header.js';

export interface NotificationMessage {
  readonly type: 'notification';
  readonly code: number;
  readonly subcode: number;
  readonly data: Uint8Array;
}

/** RFC 9003 §2: shutdown communications are at most 255 octets of UTF-8. */
export const MAX_SHUTDOWN_COMMUNICATION = 255;

export function notificationFromError(e: BgpNotification): NotificationMessage {
  return { type: 'notification', code: e.code, subcode: e.subcode, data: e.data };
}

/** A Cease / Administrative Shutdown or Reset with an RFC 9003 message. */
export function shutdownNotification(
  message: string,
  subcode: number = CeaseSubcode.AdministrativeShutdown,
): NotificationMessage {
  const text = new TextEncoder().encode(message);
  if (text.length > MAX_SHUTDOWN_COMMUNICATION) {
    throw new RangeError(`shutdown communication is ${text.length} bytes; at most 255`);
  }
  const data = new Uint8Array(1 + text.length);
  data[0] = text.length;
  data.set(text, 1);
  return { type: 'notification', code: ErrorCode.Cease, subcode, data };
}

/**
 * The RFC 9003 shutdown communication of a Cease/2 or Cease/4, or undefined. A malformed
 * one (length past the data, bad UTF-8) yields undefined: RFC 9003 §2 says such a
 * message is not to be shown, and a NOTIFICATION is never answered with another.
 */
export function shutdownCommunication(n: NotificationMessage): string | undefined {
  if (
    n.code !== ErrorCode.Cease ||
    (n.subcode !== CeaseSubcode.AdministrativeShutdown && n.subcode !== CeaseSubcode.AdministrativeReset)
  ) {
    return undefined;
  }
  if (n.data.length === 0) return undefined;
  const len = n.data[0] as number;
  if (len === 0 || 1 + len > n.data.length) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(n.data.subarray(1, 1 + len));
  } catch {
    return undefined;
  }
}

/** RFC 8538 §3: a Hard Reset carries the NOTIFICATION that caused it in its data. */
export function hardResetCause(n: NotificationMessage): NotificationMessage | undefined {
  if (n.code !== ErrorCode.Cease || n.subcode !== CeaseSubcode.HardReset || n.data.length < 2)
    return undefined;
  return {
    type: 'notification',
    code: n.data[0] as number,
    subcode: n.data[1] as number,
    data: n.data.slice(2),
  };
}

/**
 * One line for logs and `bgp-ts status`: names and numbers, the Hard Reset's cause
 * (RFC 8538 §3) and the shutdown text (RFC 9003), e.g.
 * `Cease / Administrative Shutdown (6/2): "node drained"`.
 */
export function describeNotification(n: NotificationMessage): string {
  const cause = hardResetCause(n);
  const inner = cause ?? n;
  const text = shutdownCommunication(inner);
  const name = `${errorCodeName(n.code)} / ${errorSubcodeName(n.code, n.subcode)} (${n.code}/${n.subcode})`;
  const wrapped =
    cause === undefined
      ? name
      : `${name} of ${errorCodeName(cause.code)} / ${errorSubcodeName(cause.code, cause.subcode)} (${cause.code}/${cause.subcode})`;
  return text === undefined ? wrapped : `${wrapped}: ${JSON.stringify(text)}`;
}

export function decodeNotification(body: Uint8Array): NotificationMessage {
  // The framer guarantees at least 2 body bytes (RFC 4271 §6.1 minimum length 21).
  return { type: 'notification', code: body[0] as number, subcode: body[1] as number, data: body.slice(2) };
}

export function encodeNotification(n: NotificationMessage, maxLength: number): Uint8Array {
  const w = new Writer(21 + n.data.length);
  writeHeader(w, MessageType.Notification);
  w.u8(n.code).u8(n.subcode).bytes(n.data);
  return patchLength(w, maxLength);
}
