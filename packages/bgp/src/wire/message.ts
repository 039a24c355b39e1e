// The message union and the entry points that dispatch on the header's type.

import type { CodecContext } from './context.js';
import { DEFAULT_CONTEXT, maxMessageLength } from './context.js';
import { HeaderSubcode, headerError } from './errors.js';
import { checkHeader, HEADER_LENGTH, MessageType } from './framer.js';
import type { NotificationMessage } from './notification.js';
import { decodeNotification, encodeNotification } from './notification.js';
import type { OpenMessage } from './open.js';
import { decodeOpen, encodeOpen } from './open.js';
import type { RouteRefreshMessage } from './route-refresh.js';
import { decodeRouteRefresh, encodeRouteRefresh } from './route-refresh.js';
import type { UpdateMessage } from './update.js';
import { decodeUpdate, encodeUpdate } from './update.js';

export interface KeepaliveMessage {
  readonly type: 'keepalive';
}

export type BgpMessage =
  OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

export const KEEPALIVE: KeepaliveMessage = Object.freeze({ type: 'keepalive' });
const KEEPALIVE_BYTES = (() => {
  const b = new Uint8Array(HEADER_LENGTH).fill(0xff);
  b[16] = 0;
  b[17] = HEADER_LENGTH;
  b[18] = MessageType.Keepalive;
  return b;
})();

/**
 * Decodes one whole message (header included), as the framer hands it out.
 * Throws BgpNotification for anything malformed, and nothing else.
 */
export function decodeFrame(frame: Uint8Array, ctx: CodecContext = DEFAULT_CONTEXT): BgpMessage {
  if (frame.length < HEADER_LENGTH) {
    throw headerError(
      HeaderSubcode.BadMessageLength,
      new Uint8Array(0),
      `${frame.length} bytes are not a header`,
    );
  }
  const length = checkHeader(frame, 0, maxMessageLength(ctx));
  if (length !== frame.length) {
    throw headerError(
      HeaderSubcode.BadMessageLength,
      frame.slice(16, 18),
      `declared length ${length} but ${frame.length} bytes given`,
    );
  }
  const body = frame.subarray(HEADER_LENGTH);
  switch (frame[18] as MessageType) {
    case MessageType.Open:
      return decodeOpen(body);
    case MessageType.Update:
      return decodeUpdate(body, ctx);
    case MessageType.Notification:
      return decodeNotification(body);
    case MessageType.Keepalive:
      return KEEPALIVE;
    case MessageType.RouteRefresh:
      return decodeRouteRefresh(body, frame);
  }
}

export function encodeMessage(m: BgpMessage, ctx: CodecContext = DEFAULT_CONTEXT): Uint8Array {
  switch (m.type) {
    case 'open':
      return encodeOpen(m);
    case 'update':
      return encodeUpdate(m, ctx);
    case 'notification':
      return encodeNotification(m, maxMessageLength(ctx));
    case 'keepalive':
      return KEEPALIVE_BYTES.slice();
    case 'routeRefresh':
      return encodeRouteRefresh(m, maxMessageLength(ctx));
  }
}
