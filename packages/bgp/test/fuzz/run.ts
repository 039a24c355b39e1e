// The long fuzz run: `npm run fuzz:codec [-- --iterations N --seed S]`.
// Mutates valid messages (every vector we keep, plus generated ones) and random bytes,
// decodes each under a random session context, and requires a message or a
// BgpNotification. Any other exception is saved to test/vectors/crashers/ (replayed by
// crashers.test.ts) and makes the run exit 1.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import type { CodecContext } from '../../src/wire/index.js';
import {
  BgpNotification,
  MessageFramer,
  afiSafiName,
  decodeFrame,
  encodeMessage,
  toHex,
} from '../../src/wire/index.js';
import { contextArb, messageArb } from '../arbitraries.js';
import { VECTORS, contextFor, hex, loadJsonDir } from '../helpers.js';
import { mutate } from './mutate.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const iterations = arg('iterations', 1_000_000);
let seed = arg('seed', Date.now() % 2 ** 31) >>> 0;
const startSeed = seed;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

interface Seed {
  bytes: Uint8Array;
  ctx: CodecContext;
}
const seeds: Seed[] = [];
for (const dir of ['external', 'captured']) {
  for (const { data } of loadJsonDir<{
    session?: { as4?: boolean; addPath?: string[] };
    vectors?: { hex: string; context: { as4?: boolean; addPath?: string[] } }[];
    messages?: { hex: string }[];
  }>(dir)) {
    for (const v of data.vectors ?? []) seeds.push({ bytes: hex(v.hex), ctx: contextFor(v.context) });
    for (const m of data.messages ?? [])
      seeds.push({ bytes: hex(m.hex), ctx: contextFor(data.session ?? {}) });
  }
}
const vectorSeeds = seeds.length;
for (const [ctx, m] of fc.sample(
  contextArb.chain((c) => fc.tuple(fc.constant(c), messageArb(c))),
  { numRuns: 3000, seed: startSeed },
)) {
  try {
    seeds.push({ bytes: encodeMessage(m, ctx), ctx });
  } catch {
    // too large for a message: skip
  }
}
const contexts = fc.sample(contextArb, { numRuns: 16, seed: startSeed });

const counts = { message: 0, malformedUpdate: 0, notification: 0, crash: 0 };
const t0 = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) {
  const s = seeds[Math.floor(rand() * seeds.length)]!;
  const ctx = rand() < 0.7 ? s.ctx : contexts[Math.floor(rand() * contexts.length)]!;
  let input: Uint8Array;
  if (rand() < 0.05) {
    input = new Uint8Array(Math.floor(rand() * 64));
    for (let k = 0; k < input.length; k++) input[k] = Math.floor(rand() * 256);
    if (rand() < 0.7) input.fill(0xff, 0, Math.min(16, input.length));
  } else {
    input = mutate(s.bytes, rand);
  }
  try {
    const m = decodeFrame(input, ctx);
    if (m.type === 'update' && m.malformed !== undefined) counts.malformedUpdate++;
    else counts.message++;
    if (i % 64 === 0) new MessageFramer(65535).push(input, () => {});
  } catch (e) {
    if (e instanceof BgpNotification) {
      counts.notification++;
      continue;
    }
    counts.crash++;
    const id = createHash('sha1').update(input).digest('hex').slice(0, 12);
    const file = new URL(`crashers/${id}.json`, VECTORS);
    writeFileSync(
      file,
      JSON.stringify(
        {
          hex: toHex(input),
          context: {
            as4: ctx.as4,
            addPath: [...ctx.addPath].map((k) => afiSafiName(k >> 8, k & 255)),
            extendedMessage: ctx.extendedMessage,
          },
          error: String(e),
        },
        null,
        1,
      ) + '\n',
    );
    console.error(`crash ${id}: ${String(e)}`);
  }
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(
  `fuzz: ${iterations} inputs in ${secs.toFixed(1)} s (${Math.round(iterations / secs)}/s), seed ${startSeed}, ` +
    `${seeds.length} seeds (${vectorSeeds} from vectors)\n` +
    `  decoded ${counts.message}, RFC 7606 malformed UPDATE ${counts.malformedUpdate}, ` +
    `BgpNotification ${counts.notification}, other exceptions ${counts.crash}`,
);
process.exitCode = counts.crash === 0 ? 0 : 1;
