// `npm run bench:codec`: encode and decode throughput for a 1,000,000-prefix IPv4 table,
// (a) packed in full UPDATEs under one attribute set, (b) with a distinct attribute set
// every 10 prefixes. Prints prefixes per second, peak memory, and the ratio to a bare loop
// that only walks the same bytes (frames, attributes, prefixes) without building anything:
// the floor for any decoder on this machine, measured in the same run.
//
// Options: --prefixes N (default 1000000), --rounds N (default 5; the median is reported).

import type { Asn, PathAttributes } from '../src/wire/index.js';
import {
  MessageFramer,
  PrefixList,
  decodeFrame,
  makeContext,
  packAnnouncements,
  scanUpdate,
} from '../src/wire/index.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const N = arg('prefixes', 1_000_000);
const ROUNDS = arg('rounds', 5);
// Goal (issue 2): decode within 3x of the floor, and at least 10M prefixes/s when packed.
const ctx = makeContext({ as4: true });
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const timer = setInterval(sampleRss, 5);

/** 1M distinct prefixes: /24s from 1.0.0.0 on, a /22 every 16th, a /32 every 50th. */
function table(n: number): PrefixList {
  const addrs = new Uint32Array(n);
  const lens = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const len = i % 50 === 0 ? 32 : i % 16 === 0 ? 22 : 24;
    const base = (0x01000000 + i * 256) >>> 0;
    addrs[i] = len === 32 ? (base | 1) >>> 0 : len === 22 ? (base & 0xfffffc00) >>> 0 : base;
    lens[i] = len;
  }
  return new PrefixList(1, addrs, lens);
}

function attrs(i: number): PathAttributes {
  return {
    origin: 'igp',
    asPath: [{ type: 'sequence', asns: [65001, 64512 + (i % 1000), 4200000000 + (i % 7)] as Asn[] }],
    nextHop: '192.0.2.1',
    multiExitDisc: i,
    communities: [((65001 << 16) | (i & 0xffff)) >>> 0],
  };
}

function concat(msgs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(msgs.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of msgs) {
    out.set(m, o);
    o += m.length;
  }
  return out;
}

function encodePacked(p: PrefixList): Uint8Array[] {
  return packAnnouncements({ attributes: attrs(0), prefixes: p }, ctx);
}

function encodeEvery10(p: PrefixList): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < p.length; i += 10) {
    for (const m of packAnnouncements(
      { attributes: attrs(i), prefixes: p.slice(i, Math.min(i + 10, p.length)) },
      ctx,
    )) {
      out.push(m);
    }
  }
  return out;
}

/** Frames the stream in 64 KiB chunks, as a socket delivers it; counts what `read` returns. */
function framed(stream: Uint8Array, read: (frame: Uint8Array) => number): number {
  let prefixes = 0;
  const framer = new MessageFramer();
  for (let o = 0; o < stream.length; o += 65536) {
    framer.push(stream.subarray(o, o + 65536), (type, frame) => {
      if (type === 2) prefixes += read(frame);
    });
  }
  return prefixes;
}

/** Every message decoded to objects. */
const decodeStream = (stream: Uint8Array) =>
  framed(stream, (frame) => {
    const m = decodeFrame(frame, ctx);
    return m.type === 'update' ? m.nlri.length : 0;
  });

/**
 * Every message scanned, as the RIB will read UPDATEs: every check made, prefixes decoded,
 * attributes left as bytes to intern (objects are built once per new set).
 */
const scanStream = (stream: Uint8Array) =>
  framed(stream, (frame) => scanUpdate(frame.subarray(19), ctx).nlri.length);

/**
 * The floor: walk the same bytes the same way (header, withdrawn, each attribute header,
 * every byte of every prefix), folding them into one value so the walk cannot be optimised away, and
 * building nothing.
 */
function walkStream(stream: Uint8Array): number {
  let prefixes = 0;
  let sink = 0;
  let o = 0;
  const b = stream;
  while (o + 19 <= b.length) {
    const len = (b[o + 16]! << 8) | b[o + 17]!;
    const end = o + len;
    let i = o + 19;
    const wl = (b[i]! << 8) | b[i + 1]!;
    i += 2 + wl;
    const al = (b[i]! << 8) | b[i + 1]!;
    i += 2;
    const ae = i + al;
    while (i < ae) {
      const flags = b[i]!;
      const l = (flags & 0x10) !== 0 ? (b[i + 2]! << 8) | b[i + 3]! : b[i + 2]!;
      sink ^= b[i + 1]!;
      i += ((flags & 0x10) !== 0 ? 4 : 3) + l;
    }
    while (i < end) {
      const nb = (b[i]! + 7) >> 3;
      for (let k = 1; k <= nb; k++) sink ^= b[i + k]!;
      i += 1 + nb;
      prefixes++;
    }
    o = end;
  }
  return prefixes + (sink & 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Seconds per call of f, repeating f for at least 200 ms so short runs are not noise. */
function time(f: () => unknown): number {
  gc();
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsed: number;
  do {
    f();
    calls++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (elapsed < 0.2);
  return elapsed / calls;
}

function bench(name: string, encode: (p: PrefixList) => Uint8Array[]): void {
  const p = table(N);
  const enc: number[] = [];
  let msgs: Uint8Array[] = [];
  for (let r = 0; r < ROUNDS; r++) enc.push(time(() => (msgs = encode(p))));
  const stream = concat(msgs);
  msgs.length = 0; // let the encoded messages go before decoding
  const dec: number[] = [];
  const scan: number[] = [];
  const floor: number[] = [];
  let decoded = 0;
  let scanned = 0;
  let walked = 0;
  for (let r = 0; r < ROUNDS; r++) {
    floor.push(time(() => (walked = walkStream(stream))));
    scan.push(time(() => (scanned = scanStream(stream))));
    dec.push(time(() => (decoded = decodeStream(stream))));
  }
  if (decoded !== N || walked !== N || scanned !== N) {
    throw new Error(`decoded ${decoded}, scanned ${scanned}, walked ${walked}, expected ${N}`);
  }
  sampleRss();
  const e = median(enc);
  const d = median(dec);
  const sc = median(scan);
  const f = median(floor);
  const rate = (s: number) => `${(N / s / 1e6).toFixed(2)} M prefixes/s`;
  console.log(`${name}: ${N} prefixes in ${(stream.length / 2 ** 20).toFixed(1)} MiB of UPDATEs`);
  console.log(`  encode ${(e * 1000).toFixed(1).padStart(6)} ms  ${rate(e)}  packAnnouncements`);
  const ms = (s: number) => `${(s * 1000).toFixed(1).padStart(6)} ms`;
  console.log(
    `  scan   ${ms(sc)}  ${rate(sc)}  frame + scanUpdate: all checks, prefixes, attributes as bytes  ${(sc / f).toFixed(2)}x floor`,
  );
  console.log(
    `  decode ${ms(d)}  ${rate(d)}  frame + decodeFrame: attributes as objects too                 ${(d / f).toFixed(2)}x floor`,
  );
  console.log(`  floor  ${ms(f)}  ${rate(f)}  bare loop walking the same bytes`);
}

console.log(`bgp-ts codec benchmark, Node ${process.version}, median of ${ROUNDS} rounds`);
bench('packed (one attribute set)', encodePacked);
bench('distinct attribute set every 10 prefixes', encodeEvery10);
clearInterval(timer);
console.log(`peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (whole process, both runs)`);
