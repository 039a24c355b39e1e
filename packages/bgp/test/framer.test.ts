import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ErrorCode,
  HeaderSubcode,
  KEEPALIVE,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MessageFramer,
  PrefixList,
  decodeFrame,
  encodeMessage,
  makeContext,
  makeEndOfRib,
  packAnnouncements,
  shutdownNotification,
  toHex,
} from '../src/wire/index.js';
import { frame, notificationOf } from './helpers.js';

const ctx = makeContext();

function sampleStream(): { messages: Uint8Array[]; stream: Uint8Array } {
  const big = packAnnouncements(
    {
      attributes: { origin: 'igp', asPath: [], nextHop: '192.0.2.1' },
      prefixes: PrefixList.parse(
        1,
        Array.from({ length: 300 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`),
      ),
    },
    ctx,
  );
  const messages = [
    encodeMessage(KEEPALIVE, ctx),
    ...big,
    encodeMessage(makeEndOfRib(1, 1), ctx),
    encodeMessage(shutdownNotification('bye'), ctx),
  ];
  const stream = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of messages) {
    stream.set(m, o);
    o += m.length;
  }
  return { messages, stream };
}

function collect(framer: MessageFramer, chunks: Uint8Array[]): string[] {
  const out: string[] = [];
  for (const c of chunks) framer.push(c, (_t, f) => out.push(toHex(f)));
  return out;
}

describe('MessageFramer', () => {
  it('yields every message whole when the stream is split at every byte offset', () => {
    const { messages, stream } = sampleStream();
    const want = messages.map(toHex);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new MessageFramer();
      assert.deepEqual(collect(f, [stream.subarray(0, cut), stream.subarray(cut)]), want, `cut at ${cut}`);
      assert.equal(f.buffered, 0);
    }
  });

  it('yields every message when fed one byte at a time', () => {
    const { messages, stream } = sampleStream();
    const chunks = Array.from(stream, (b) => Uint8Array.of(b));
    assert.deepEqual(collect(new MessageFramer(), chunks), messages.map(toHex));
  });

  it('hands out whole messages inside a chunk as views of it, without copying', () => {
    const { stream } = sampleStream();
    const frames: Uint8Array[] = [];
    new MessageFramer().push(stream, (_t, f) => frames.push(f));
    for (const f of frames) assert.equal(f.buffer, stream.buffer);
  });

  it('rejects a marker that is not all ones with Connection Not Synchronized', () => {
    const bad = encodeMessage(KEEPALIVE, ctx);
    bad[5] = 0;
    const e = notificationOf(() => new MessageFramer().push(bad, () => {}));
    assert.equal(e.code, ErrorCode.MessageHeader);
    assert.equal(e.subcode, HeaderSubcode.ConnectionNotSynchronized);
  });

  for (const [name, len, type] of [
    ['shorter than a header', 18, 4],
    ['longer than 4096', 4097, 2],
    ['a KEEPALIVE longer than 19', 20, 4],
    ['an OPEN shorter than 29', 28, 1],
    ['an UPDATE shorter than 23', 22, 2],
    ['a NOTIFICATION shorter than 21', 20, 3],
  ] as const) {
    it(`rejects ${name} with Bad Message Length carrying the length field`, () => {
      const h = frame(type, []);
      h[16] = len >> 8;
      h[17] = len & 255;
      const e = notificationOf(() => new MessageFramer().push(h, () => {}));
      assert.equal(e.code, ErrorCode.MessageHeader);
      assert.equal(e.subcode, HeaderSubcode.BadMessageLength);
      assert.deepEqual([...e.data], [len >> 8, len & 255]);
    });
  }

  it('rejects an unknown type with Bad Message Type carrying the type', () => {
    for (const t of [0, 6, 255]) {
      const e = notificationOf(() => new MessageFramer().push(frame(t, [0, 0, 0, 0]), () => {}));
      assert.equal(e.subcode, HeaderSubcode.BadMessageType);
      assert.deepEqual([...e.data], [t]);
    }
  });

  it('reports a bad header as soon as its 19 bytes arrive, before any body', () => {
    const h = frame(2, []);
    h[16] = 0xff;
    h[17] = 0xff; // 65535 > 4096
    const f = new MessageFramer();
    f.push(h.subarray(0, 18), () => {});
    assert.throws(() => f.push(h.subarray(18, 19), () => {}), /Bad Message Length/);
  });

  it('stays failed after a header error: the stream cannot be resynchronised', () => {
    const f = new MessageFramer();
    const bad = frame(9, [0, 0]);
    assert.throws(() => f.push(bad, () => {}));
    assert.throws(() => f.push(encodeMessage(KEEPALIVE, ctx), () => {}), /Bad Message Type/);
  });

  it('accepts messages up to 65535 bytes once Extended Message is negotiated', () => {
    const ext = makeContext({ extendedMessage: true });
    const prefixes = PrefixList.parse(
      1,
      Array.from({ length: 15000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`),
    );
    const msgs = packAnnouncements(
      { attributes: { origin: 'igp', asPath: [], nextHop: '192.0.2.1' }, prefixes },
      ext,
    );
    assert.equal(msgs.length, 1);
    const one = msgs[0]!;
    assert.ok(one.length > 4096 && one.length <= MAX_EXTENDED_MESSAGE_LENGTH);
    assert.throws(() => new MessageFramer().push(one, () => {}), /Bad Message Length/);
    const f = new MessageFramer();
    f.setMaxLength(MAX_EXTENDED_MESSAGE_LENGTH);
    let got: Uint8Array | undefined;
    f.push(one, (_t, fr) => (got = fr));
    assert.ok(got !== undefined);
    const m = decodeFrame(got, ext);
    assert.equal(m.type === 'update' && m.nlri.length, 15000);
  });
});
