// The datastore as the node daemon sees it: every kind BGP configuration and the dataplane
// read, kept current by watches. Each watch starts with a resync (the full list) and then
// delivers changes; a watch error is counted and the watch retries by itself (the backend
// contract), so the daemon keeps its last good state through a datastore outage.
import type { Datastore, Kind, ResourceOf, Watch } from '@tabby/datastore';
import type { BgpSnapshot, KubernetesObjects } from '../bgpconfig/inputs.js';
import { EMPTY_KUBERNETES } from '../bgpconfig/inputs.js';

export const WATCHED_KINDS = [
  'BGPConfiguration',
  'BGPPeer',
  'BGPFilter',
  'Node',
  'IPPool',
  'BlockAffinity',
  'WorkloadEndpoint',
] as const satisfies readonly Kind[];
export type WatchedKind = (typeof WATCHED_KINDS)[number];

const keyOf = (r: { metadata: { name: string; namespace?: string } }): string =>
  r.metadata.namespace === undefined ? r.metadata.name : `${r.metadata.namespace}/${r.metadata.name}`;

export interface CacheHealth {
  /** Every kind has had its first full list. */
  readonly synced: boolean;
  /** Watch errors so far, by kind. */
  readonly errors: Readonly<Record<string, number>>;
  /** The last error, for status. */
  readonly lastError?: string;
}

export class ResourceCache {
  private readonly maps = new Map<WatchedKind, Map<string, ResourceOf<WatchedKind>>>();
  private readonly synced = new Set<WatchedKind>();
  private readonly errors: Record<string, number> = {};
  private lastError: string | undefined;
  private readonly watches: Watch<unknown>[] = [];
  private stopped = false;
  kubernetes: KubernetesObjects = EMPTY_KUBERNETES;

  constructor(
    private readonly ds: Datastore,
    /** Called after every change that was applied (debounce downstream). */
    private readonly onChange: (kind: WatchedKind) => void,
  ) {
    for (const k of WATCHED_KINDS) this.maps.set(k, new Map());
  }

  start(): void {
    for (const kind of WATCHED_KINDS) {
      const w = this.ds.watch(kind);
      this.watches.push(w);
      void this.pump(kind, w);
    }
  }

  private async pump(kind: WatchedKind, w: Watch<ResourceOf<WatchedKind>>): Promise<void> {
    const map = this.maps.get(kind)!;
    try {
      for await (const ev of w) {
        if (this.stopped) return;
        switch (ev.type) {
          case 'resync':
            map.clear();
            for (const r of ev.items) map.set(keyOf(r), r);
            this.synced.add(kind);
            break;
          case 'added':
          case 'modified':
            map.set(keyOf(ev.object), ev.object);
            break;
          case 'deleted':
            map.delete(keyOf(ev.object));
            break;
          case 'bookmark':
            continue;
          case 'error':
            this.errors[kind] = (this.errors[kind] ?? 0) + 1;
            this.lastError = `${kind}: ${ev.error.message}`;
            continue;
        }
        this.onChange(kind);
      }
    } catch (e) {
      // The contract says a watch never ends by itself; if one does, say so loudly in status.
      this.errors[kind] = (this.errors[kind] ?? 0) + 1;
      this.lastError = `${kind}: watch ended: ${(e as Error).message}`;
    }
  }

  get health(): CacheHealth {
    return {
      synced: this.synced.size === WATCHED_KINDS.length,
      errors: { ...this.errors },
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  list<K extends WatchedKind>(kind: K): ResourceOf<K>[] {
    return [...this.maps.get(kind)!.values()] as ResourceOf<K>[];
  }

  snapshot(): BgpSnapshot {
    return {
      bgpConfigurations: this.list('BGPConfiguration'),
      bgpPeers: this.list('BGPPeer'),
      bgpFilters: this.list('BGPFilter'),
      nodes: this.list('Node'),
      ipPools: this.list('IPPool'),
      blockAffinities: this.list('BlockAffinity'),
      workloadEndpoints: this.list('WorkloadEndpoint'),
      kubernetes: this.kubernetes,
    };
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watches) w.close();
  }
}
