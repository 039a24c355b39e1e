// What a session negotiated that changes how bytes are read and written.

import type { AfiSafiKey } from './types.js';
import { afiSafiKey } from './types.js';
import { MAX_EXTENDED_MESSAGE_LENGTH, MAX_MESSAGE_LENGTH } from './framer.js';

export interface CodecContext {
  /** RFC 6793: both sides advertised the 4-octet AS capability. */
  readonly as4: boolean;
  /**
   * RFC 7911: the families whose NLRI carry path identifiers in the direction being
   * coded (for decoding: we advertised receive and the peer send; for encoding: the reverse).
   */
  readonly addPath: ReadonlySet<AfiSafiKey>;
  /** RFC 8654: both sides advertised Extended Message. */
  readonly extendedMessage: boolean;
}

export const DEFAULT_CONTEXT: CodecContext = Object.freeze({
  as4: true,
  addPath: new Set<AfiSafiKey>(),
  extendedMessage: false,
});

export function makeContext(init: Partial<CodecContext> = {}): CodecContext {
  return { ...DEFAULT_CONTEXT, ...init };
}

export function maxMessageLength(ctx: CodecContext): number {
  return ctx.extendedMessage ? MAX_EXTENDED_MESSAGE_LENGTH : MAX_MESSAGE_LENGTH;
}

export function hasAddPath(ctx: CodecContext, afi: number, safi: number): boolean {
  return ctx.addPath.size > 0 && ctx.addPath.has(afiSafiKey(afi, safi));
}
