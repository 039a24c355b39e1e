// The narrow seam between felix-lite and whatever computes best paths (bgp-ts through the
// node daemon, or a static table in tests): route events in, a table of current best paths
// out. felix-lite knows nothing of BGP sessions or attributes.
import { cidrText, parseCidr, parseIp } from '../routes/ip.js';
import type { BestPath } from './inputs.js';

export type PathEvent =
  /** The best path(s) for a prefix are now these next hops (replacing any before). */
  | { readonly kind: 'update'; readonly prefix: string; readonly nextHops: readonly string[] }
  | { readonly kind: 'withdraw'; readonly prefix: string };

/**
 * Where path events come from. subscribe() replays the current table as updates, then
 * streams changes; `onResync` (optional) says the source lost track and the listener should
 * drop what it has before the replay that follows.
 */
export interface PathSource {
  subscribe(onEvent: (e: PathEvent) => void, onResync?: () => void): () => void;
}

/** Folds path events into the current best paths (canonical prefixes and next hops). */
export class BestPathTable {
  private readonly byPrefix = new Map<string, readonly string[]>();

  /** Applies an event; true when the table changed. Throws TypeError on a malformed prefix. */
  apply(e: PathEvent): boolean {
    const prefix = cidrText(parseCidr(e.prefix, { lenient: true }));
    if (e.kind === 'withdraw') return this.byPrefix.delete(prefix);
    const hops = [...new Set(e.nextHops.map((h) => parseIp(h).text))].sort();
    if (hops.length === 0) return this.byPrefix.delete(prefix);
    const before = this.byPrefix.get(prefix);
    if (before !== undefined && before.length === hops.length && before.every((h, i) => h === hops[i]))
      return false;
    this.byPrefix.set(prefix, hops);
    return true;
  }

  clear(): void {
    this.byPrefix.clear();
  }

  get size(): number {
    return this.byPrefix.size;
  }

  paths(): BestPath[] {
    const out: BestPath[] = [];
    for (const [prefix, nextHops] of this.byPrefix) out.push({ prefix, nextHops });
    return out;
  }
}
