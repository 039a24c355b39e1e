// Exports by class of peer: peers (and update groups) with the same role and export policy
// get the same export of a Loc-RIB route, so it is computed and interned once per distinct
// (route attribute set, source peer) and class, not per prefix and peer. Entries hold a
// reference to their exported set. A memo per target skips even the map lookups for the
// next prefix of the same UPDATE, which shares the set.

import type { AttrStore } from '../rib/index.js';

export interface CachedExport {
  /** The AttrStore generation of the Loc-RIB set (ids are reused). */
  readonly gen: number;
  readonly from: number;
  /** The exported set (outAttrs id), or -1: not exported. */
  readonly out: number;
  /** False once replaced or cleared (a memo must not use it then). */
  live: boolean;
}

/** The last cache entry a target used, and for which Loc-RIB set. */
export interface ExportMemo {
  attrId: number;
  entry: CachedExport | undefined;
}

export const newMemo = (): ExportMemo => ({ attrId: -1, entry: undefined });

export class ExportCache {
  private readonly byClass = new Map<string, Map<number, CachedExport>>();
  private size = 0;

  constructor(
    private readonly outAttrs: AttrStore,
    /** Entries before the cache starts again (bounds its memory). */
    private readonly max = 200_000,
  ) {}

  /** The export of set `attrId` (generation `gen`) from peer `from` for this class, if known. */
  get(cls: string, memo: ExportMemo, attrId: number, gen: number, from: number): number | undefined {
    let e = memo.attrId === attrId ? memo.entry : undefined;
    if (e === undefined || !e.live) {
      e = this.byClass.get(cls)?.get(attrId);
      if (e === undefined) return undefined;
      memo.attrId = attrId;
      memo.entry = e;
    }
    return e.gen === gen && e.from === from ? e.out : undefined;
  }

  set(cls: string, memo: ExportMemo, attrId: number, gen: number, from: number, out: number): void {
    if (this.size > this.max) this.clear();
    let m = this.byClass.get(cls);
    if (m === undefined) {
      m = new Map();
      this.byClass.set(cls, m);
    }
    const old = m.get(attrId);
    if (old === undefined) this.size++;
    else this.drop(old);
    if (out >= 0) this.outAttrs.retain(out);
    const e: CachedExport = { gen, from, out, live: true };
    m.set(attrId, e);
    memo.attrId = attrId;
    memo.entry = e;
  }

  clear(): void {
    for (const m of this.byClass.values()) for (const e of m.values()) this.drop(e);
    this.byClass.clear();
    this.size = 0;
  }

  private drop(e: CachedExport): void {
    e.live = false;
    if (e.out >= 0) this.outAttrs.release(e.out);
  }
}
