// Message framing from a TCP byte stream (RFC 4271 §4.1, §6.1).
//
// Whole messages inside a chunk are handed out as views of that chunk (no copy); only a
// message split across chunks is gathered, into a buffer the size of that one message.
// The header is checked before the body is waited for, so a bad length is reported
// as soon as its 19 bytes are in, and never makes us buffer up to 64 KiB of garbage.

import { ErrorCode, HeaderSubcode, headerError, BgpNotification } from './errors.js';

export const HEADER_LENGTH = 19;
export const MARKER_LENGTH = 16;
/** RFC 4271 §4.1. */
export const MAX_MESSAGE_LENGTH = 4096;
/** RFC 8654 §4: once both sides advertised the Extended Message capability. */
export const MAX_EXTENDED_MESSAGE_LENGTH = 65535;

export const MessageType = {
  Open: 1,
  Update: 2,
  Notification: 3,
  Keepalive: 4,
  RouteRefresh: 5,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** RFC 4271 §6.1 minimum lengths per type (KEEPALIVE: exact); RFC 2918 §3 for ROUTE-REFRESH. */
const MIN_LENGTH: Record<MessageType, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };

/**
 * Checks the 19-byte header at b[off..]: marker, length bounds, type.
 * Returns the declared length. Throws the RFC 4271 §6.1 NOTIFICATION.
 */
export function checkHeader(b: Uint8Array, off: number, maxLength: number): number {
  // RFC 4271 §6.1: "If the Marker field of the message header is not as expected,
  // then a synchronization error has occurred" -> Connection Not Synchronized.
  let m = 0xff;
  for (let i = 0; i < MARKER_LENGTH; i++) m &= b[off + i] as number;
  if (m !== 0xff) {
    throw headerError(HeaderSubcode.ConnectionNotSynchronized, new Uint8Array(0), 'marker is not all ones');
  }
  const length = ((b[off + 16] as number) << 8) | (b[off + 17] as number);
  const type = b[off + 18] as number;
  // RFC 4271 §6.1: the Data field carries the erroneous Length field.
  const lengthData = b.slice(off + 16, off + 18);
  if (length < HEADER_LENGTH || length > maxLength) {
    throw headerError(
      HeaderSubcode.BadMessageLength,
      lengthData,
      `length ${length} outside ${HEADER_LENGTH}..${maxLength}`,
    );
  }
  if (type < 1 || type > 5) {
    // RFC 4271 §6.1: the Data field carries the erroneous Type field.
    throw headerError(HeaderSubcode.BadMessageType, Uint8Array.of(type), `unknown message type ${type}`);
  }
  const min = MIN_LENGTH[type as MessageType];
  if (length < min || (type === MessageType.Keepalive && length !== HEADER_LENGTH)) {
    throw headerError(
      HeaderSubcode.BadMessageLength,
      lengthData,
      `length ${length} is wrong for message type ${type} (minimum ${min})`,
    );
  }
  return length;
}

/** Receives one whole message: its type and all its bytes, header included. */
export type FrameHandler = (type: MessageType, frame: Uint8Array) => void;

export class MessageFramer {
  private pending: Uint8Array | null = null; // a message being gathered across chunks
  private pendingFill = 0;
  private head = new Uint8Array(HEADER_LENGTH); // a header split across chunks
  private headFill = 0;
  private failed: BgpNotification | null = null;

  constructor(private maxLength: number = MAX_MESSAGE_LENGTH) {}

  /** RFC 8654: raise the limit to 65535 once Extended Message is negotiated both ways. */
  setMaxLength(n: number): void {
    this.maxLength = n;
  }

  /** Bytes held for a message not yet complete. */
  get buffered(): number {
    return this.pending === null ? this.headFill : this.pendingFill;
  }

  /**
   * Feeds a chunk; calls `onFrame` for each whole message, in order. Frames may be
   * views of `chunk`: the handler must finish with (or copy) them before returning
   * if the caller reuses chunk memory. After a header error every later push throws
   * the same error: the stream cannot be resynchronised (RFC 4271 §6.1).
   */
  push(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.failed !== null) throw this.failed;
    try {
      this.pushInner(chunk, onFrame);
    } catch (e) {
      if (e instanceof BgpNotification && e.code === ErrorCode.MessageHeader) this.failed = e;
      throw e;
    }
  }

  private pushInner(chunk: Uint8Array, onFrame: FrameHandler): void {
    let off = 0;
    const n = chunk.length;
    // Finish a message split across chunks first.
    if (this.headFill > 0) {
      const take = Math.min(HEADER_LENGTH - this.headFill, n);
      this.head.set(chunk.subarray(0, take), this.headFill);
      this.headFill += take;
      off = take;
      if (this.headFill < HEADER_LENGTH) return;
      const length = checkHeader(this.head, 0, this.maxLength);
      this.headFill = 0;
      this.pending = new Uint8Array(length);
      this.pending.set(this.head);
      this.pendingFill = HEADER_LENGTH;
    }
    if (this.pending !== null) {
      const need = this.pending.length - this.pendingFill;
      const take = Math.min(need, n - off);
      this.pending.set(chunk.subarray(off, off + take), this.pendingFill);
      this.pendingFill += take;
      off += take;
      if (this.pendingFill < this.pending.length) return;
      const frame = this.pending;
      this.pending = null;
      this.pendingFill = 0;
      onFrame(frame[18] as MessageType, frame);
    }
    // Whole messages inside this chunk: views, no copy.
    while (n - off >= HEADER_LENGTH) {
      const length = checkHeader(chunk, off, this.maxLength);
      if (n - off < length) {
        this.pending = new Uint8Array(length);
        this.pending.set(chunk.subarray(off, n));
        this.pendingFill = n - off;
        return;
      }
      onFrame(chunk[off + 18] as MessageType, chunk.subarray(off, off + length));
      off += length;
    }
    if (off < n) {
      this.head.set(chunk.subarray(off, n), 0);
      this.headFill = n - off;
    }
  }
}
