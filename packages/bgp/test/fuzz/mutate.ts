// Byte-level mutations of valid messages, in the spirit of mqtt-packet's testRandom.js:
// most keep the header's length field true so the body decoders, not the framer, are hit.

const INTERESTING = [0, 1, 2, 3, 4, 0x0f, 0x10, 0x1f, 0x20, 0x40, 0x7f, 0x80, 0xc0, 0xe0, 0xfe, 0xff];

export function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  let b = src.slice();
  const pick = (n: number) => Math.floor(rand() * n);
  const steps = 1 + pick(4);
  for (let s = 0; s < steps; s++) {
    const at = 19 + pick(Math.max(1, b.length - 19));
    switch (pick(8)) {
      case 0: // flip a bit
        if (at < b.length) b[at]! ^= 1 << pick(8);
        break;
      case 1: // an interesting byte
        if (at < b.length) b[at] = INTERESTING[pick(INTERESTING.length)]!;
        break;
      case 2: {
        // an interesting 16-bit value (lengths live in u16s)
        const v = [0, 1, 0xff, 0x100, 0xffff, b.length, b.length - 19, b.length + 1][pick(8)]!;
        if (at + 1 < b.length) {
          b[at] = v >> 8;
          b[at + 1] = v & 255;
        }
        break;
      }
      case 3: // truncate
        b = b.slice(0, Math.max(19, at));
        break;
      case 4: {
        // append random bytes
        const extra = new Uint8Array(1 + pick(16));
        for (let i = 0; i < extra.length; i++) extra[i] = pick(256);
        const n = new Uint8Array(b.length + extra.length);
        n.set(b);
        n.set(extra, b.length);
        b = n;
        break;
      }
      case 5: {
        // duplicate a slice in place
        const len = 1 + pick(12);
        const slice = b.slice(at, at + len);
        const n = new Uint8Array(b.length + slice.length);
        n.set(b.subarray(0, at));
        n.set(slice, at);
        n.set(b.subarray(at), at + slice.length);
        b = n;
        break;
      }
      case 6: {
        // delete a slice
        const len = 1 + pick(12);
        if (at >= b.length) break;
        const n = new Uint8Array(Math.max(19, b.length - len));
        n.set(b.subarray(0, Math.min(at, n.length)));
        if (at < n.length) n.set(b.subarray(at + len).subarray(0, n.length - at), at);
        b = n;
        break;
      }
      case 7: // random byte
        if (at < b.length) b[at] = pick(256);
        break;
    }
  }
  // Keep the header consistent most of the time, so the body decoders are what is tested.
  if (rand() < 0.8 && b.length <= 0xffff) {
    b[16] = b.length >> 8;
    b[17] = b.length & 255;
  }
  return b;
}
