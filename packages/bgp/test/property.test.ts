// Properties over generated messages and bytes (fast-check):
// decode(encode(m)) = m for every message kind and session context, and any bytes at all
// give either a message or a BgpNotification, never another exception. The longer run is
// `npm run fuzz:codec` (test/fuzz/run.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CodecContext } from '../src/wire/index.js';
import {
  BgpNotification,
  MessageFramer,
  decodeFrame,
  decodePathAttributes,
  encodeMessage,
  makeContext,
  scanUpdate,
} from '../src/wire/index.js';
import { contextArb, messageArb } from './arbitraries.js';
import { mutate } from './fuzz/mutate.js';

const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 400);

/** Runs f; returns normally if it returned or threw a BgpNotification. */
function onlyNotifications(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof BgpNotification)) throw e;
  }
}

/** scanUpdate and decodeUpdate (via decodeFrame) agree on bytes, valid or not. */
function scanAgrees(bytes: Uint8Array, ctx: CodecContext): void {
  let full: ReturnType<typeof decodeFrame> | BgpNotification;
  try {
    full = decodeFrame(bytes, ctx);
  } catch (e) {
    if (!(e instanceof BgpNotification)) throw e;
    full = e;
  }
  if (full instanceof BgpNotification) {
    if (bytes.length < 19 || bytes[18] !== 2 || full.code !== 3) return; // not an UPDATE body error
    assert.throws(
      () => scanUpdate(bytes.subarray(19), ctx),
      (e: unknown) => e instanceof BgpNotification && e.code === full.code && e.subcode === full.subcode,
    );
    return;
  }
  if (full.type !== 'update') return;
  const scan = scanUpdate(bytes.subarray(19), ctx);
  assert.deepEqual(scan.nlri, full.nlri);
  assert.deepEqual(scan.withdrawnRoutes, full.withdrawnRoutes);
  assert.deepEqual(scan.mpReachNlri, full.pathAttributes.mpReachNlri);
  assert.deepEqual(scan.mpUnreachNlri, full.pathAttributes.mpUnreachNlri);
  assert.equal(scan.malformed?.action, full.malformed?.action);
  assert.deepEqual(
    scan.malformed?.errors.map((e) => [e.code, e.subcode, e.attributeType]),
    full.malformed?.errors.map((e) => [e.code, e.subcode, e.attributeType]),
  );
  if (full.malformed === undefined)
    assert.deepEqual(decodePathAttributes(scan.attributeBytes, ctx), full.pathAttributes);
}

describe('properties', () => {
  it('decode(encode(m)) deep-equals m, for every message kind and session context', () => {
    fc.assert(
      fc.property(
        contextArb.chain((ctx) => fc.tuple(fc.constant(ctx), messageArb(ctx))),
        ([ctx, m]) => {
          let bytes: Uint8Array;
          try {
            bytes = encodeMessage(m, ctx);
          } catch (e) {
            // Generated sets may not fit even 65535 bytes; that is the only allowed refusal.
            if (e instanceof RangeError && /exceeds/.test(e.message)) return;
            throw e;
          }
          assert.deepEqual(decodeFrame(bytes, ctx), m);
          scanAgrees(bytes, ctx);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('random bytes give a message or a BgpNotification, nothing else', () => {
    fc.assert(
      fc.property(contextArb, fc.uint8Array({ minLength: 0, maxLength: 200 }), (ctx, bytes) => {
        const f = new Uint8Array(19 + bytes.length).fill(0xff, 0, 16);
        f.set(bytes.subarray(0, 3), 16);
        f.set(bytes, 19);
        onlyNotifications(() => decodeFrame(bytes, ctx));
        onlyNotifications(() => decodeFrame(f, ctx));
      }),
      { numRuns: RUNS * 5 },
    );
  });

  it('mutated valid messages give a message or a BgpNotification, nothing else', () => {
    fc.assert(
      fc.property(
        contextArb.chain((ctx) => fc.tuple(fc.constant(ctx), messageArb(ctx), fc.integer())),
        ([ctx, m, seed]) => {
          let bytes: Uint8Array;
          try {
            bytes = encodeMessage(m, ctx);
          } catch {
            return;
          }
          let s = seed >>> 0;
          const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
          for (let i = 0; i < 8; i++) {
            const x = mutate(bytes, rand);
            onlyNotifications(() => decodeFrame(x, ctx));
            scanAgrees(x, ctx);
            const framer = new MessageFramer(65535);
            onlyNotifications(() => framer.push(x, (_t, fr) => decodeFrame(fr, ctx)));
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('decoding never reads past a declared length: a message followed by junk decodes the same', () => {
    const ctx = makeContext();
    fc.assert(
      fc.property(messageArb(ctx), fc.uint8Array({ minLength: 1, maxLength: 16 }), (m, junk) => {
        let bytes: Uint8Array;
        try {
          bytes = encodeMessage(m, ctx);
        } catch {
          return;
        }
        const padded = new Uint8Array(bytes.length + junk.length);
        padded.set(bytes);
        padded.set(junk, bytes.length);
        assert.deepEqual(decodeFrame(padded.subarray(0, bytes.length), ctx), m);
      }),
      { numRuns: RUNS },
    );
  });
});
