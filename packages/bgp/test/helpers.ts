// Shared test helpers: vector loading and session contexts.

import { readFileSync, readdirSync } from 'node:fs';
import type { AfiSafiKey, CodecContext } from '../src/wire/index.js';
import { BgpNotification, afiSafiKey, fromHex, makeContext, parseAfiSafiName } from '../src/wire/index.js';

/** packages/bgp/test/vectors, from the compiled test in packages/bgp/dist/test. */
export const VECTORS = new URL('../../test/vectors/', import.meta.url);

export interface VectorFile<V> {
  readonly file: string;
  readonly source: string;
  readonly vectors: readonly V[];
}

export function loadJsonDir<T>(dir: string): { file: string; data: T }[] {
  const url = new URL(`${dir}/`, VECTORS);
  let names: string[];
  try {
    names = readdirSync(url).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names
    .sort()
    .map((file) => ({ file, data: JSON.parse(readFileSync(new URL(file, url), 'utf8')) as T }));
}

export function contextFor(session: {
  as4?: boolean;
  addPath?: readonly string[];
  extendedMessage?: boolean;
}): CodecContext {
  const addPath = new Set<AfiSafiKey>();
  for (const name of session.addPath ?? []) {
    const f = parseAfiSafiName(name);
    if (f !== undefined) addPath.add(afiSafiKey(f.afi, f.safi));
  }
  return makeContext({
    as4: session.as4 ?? true,
    addPath,
    extendedMessage: session.extendedMessage ?? false,
  });
}

export const hex = fromHex;

/** Runs f and returns the BgpNotification it throws; fails if it throws anything else or nothing. */
export function notificationOf(f: () => unknown): BgpNotification {
  try {
    f();
  } catch (e) {
    if (e instanceof BgpNotification) return e;
    throw new Error(`expected a BgpNotification, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a BgpNotification, nothing was thrown');
}

/** Header + body as one message. */
export function frame(type: number, body: Uint8Array | number[]): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  const out = new Uint8Array(19 + b.length).fill(0xff, 0, 16);
  out[16] = (19 + b.length) >> 8;
  out[17] = (19 + b.length) & 255;
  out[18] = type;
  out.set(b, 19);
  return out;
}

/** One attribute: flags, type, length (extended when flags has 0x10), value. */
export function attr(flags: number, type: number, value: number[]): number[] {
  return (flags & 0x10) !== 0
    ? [flags, type, value.length >> 8, value.length & 255, ...value]
    : [flags, type, value.length, ...value];
}

/** An UPDATE body from withdrawn bytes, attribute bytes and NLRI bytes. */
export function updateBody(withdrawn: number[], attrs: number[], nlri: number[]): Uint8Array {
  return Uint8Array.from([
    withdrawn.length >> 8,
    withdrawn.length & 255,
    ...withdrawn,
    attrs.length >> 8,
    attrs.length & 255,
    ...attrs,
    ...nlri,
  ]);
}

/** Polls f every 10 ms until it holds; rejects naming `what` after `ms`. */
export function until(
  f: () => boolean | Promise<boolean>,
  what: string,
  ms = 8000,
  intervalMs = 10,
): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = async () => {
      let ok = false;
      let why = '';
      try {
        ok = await f();
      } catch (e) {
        // A failing probe (a CLI that exits non-zero until the route is there) means "not yet".
        why = `; last error: ${(e as Error).message.split('\n')[0]}`;
      }
      if (ok) resolve();
      else if (Date.now() - t0 > ms) reject(new Error(`timed out waiting for: ${what}${why}`));
      else setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  });
}
