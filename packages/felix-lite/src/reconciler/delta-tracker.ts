// Desired state against the last known dataplane state, with the difference kept up to date
// on every change (Calico's felix/deltatracker): pending updates are keys whose desired value
// is missing from, or differs from, the dataplane; pending deletions are dataplane keys
// nobody wants. Applying a delta is recorded by writing the dataplane side, after which the
// key is in sync. Costs O(1) per change, so a no-change resync of 10,000 routes is a pass
// of comparisons, not a rebuild.

export interface DeltaTrackerHooks<K, V> {
  /**
   * Called when a change on the dataplane side takes an in-sync key out of sync: the kernel
   * moved away from what was wanted (drift), as opposed to the desired side moving.
   */
  readonly onDrift?: (k: K) => void;
  /** Called for each desired key whose value is set (v) or removed (undefined). */
  readonly onDesired?: (k: K, v: V | undefined) => void;
}

export class DeltaTracker<K, V> {
  private readonly desiredMap = new Map<K, V>();
  private readonly dataplaneMap = new Map<K, V>();
  private readonly updates = new Map<K, V>();
  private readonly deletions = new Set<K>();

  private readonly onDrift: ((k: K) => void) | undefined;
  private readonly onDesired: ((k: K, v: V | undefined) => void) | undefined;

  constructor(
    private readonly equal: (desired: V, actual: V) => boolean,
    hooks: DeltaTrackerHooks<K, V> = {},
  ) {
    this.onDrift = hooks.onDrift;
    this.onDesired = hooks.onDesired;
  }

  /** The desired side. */
  readonly desired = {
    set: (k: K, v: V): void => {
      this.desiredMap.set(k, v);
      this.onDesired?.(k, v);
      this.refresh(k);
    },
    delete: (k: K): void => {
      if (!this.desiredMap.delete(k)) return;
      this.onDesired?.(k, undefined);
      this.refresh(k);
    },
    get: (k: K): V | undefined => this.desiredMap.get(k),
    has: (k: K): boolean => this.desiredMap.has(k),
    keys: (): IterableIterator<K> => this.desiredMap.keys(),
    entries: (): IterableIterator<[K, V]> => this.desiredMap.entries(),
    size: (): number => this.desiredMap.size,
    /** Makes the desired side exactly these entries (deleting the keys not among them). */
    replaceAll: (entries: Iterable<readonly [K, V]>): void => {
      const keep = new Set<K>();
      for (const [k, v] of entries) {
        keep.add(k);
        const had = this.desiredMap.get(k);
        if (had === undefined || !this.equal(v, had)) {
          this.desiredMap.set(k, v);
          this.onDesired?.(k, v);
          this.refresh(k);
        }
      }
      for (const k of [...this.desiredMap.keys()])
        if (!keep.has(k)) {
          this.desiredMap.delete(k);
          this.onDesired?.(k, undefined);
          this.refresh(k);
        }
    },
  };

  /** The dataplane side: what the kernel was last seen (or made) to hold. */
  readonly dataplane = {
    set: (k: K, v: V): void => {
      this.dataplaneMap.set(k, v);
      this.dataplaneRefresh(k);
    },
    delete: (k: K): void => {
      if (this.dataplaneMap.delete(k)) this.dataplaneRefresh(k);
    },
    get: (k: K): V | undefined => this.dataplaneMap.get(k),
    has: (k: K): boolean => this.dataplaneMap.has(k),
    keys: (): IterableIterator<K> => this.dataplaneMap.keys(),
    entries: (): IterableIterator<[K, V]> => this.dataplaneMap.entries(),
    size: (): number => this.dataplaneMap.size,
    /** Replaces the whole dataplane side with a fresh dump. */
    replaceAll: (entries: Iterable<readonly [K, V]>): void => {
      const old = new Set(this.dataplaneMap.keys());
      for (const [k, v] of entries) {
        old.delete(k);
        this.dataplaneMap.set(k, v);
        this.dataplaneRefresh(k);
      }
      for (const k of old) {
        this.dataplaneMap.delete(k);
        this.dataplaneRefresh(k);
      }
    },
  };

  /** Desired entries the dataplane lacks or has otherwise. */
  pendingUpdates(): IterableIterator<[K, V]> {
    return this.updates.entries();
  }

  /** Dataplane keys that are not desired. */
  pendingDeletions(): IterableIterator<K> {
    return this.deletions.values();
  }

  get pendingUpdateCount(): number {
    return this.updates.size;
  }

  get pendingDeletionCount(): number {
    return this.deletions.size;
  }

  inSync(): boolean {
    return this.updates.size === 0 && this.deletions.size === 0;
  }

  isPending(k: K): boolean {
    return this.updates.has(k) || this.deletions.has(k);
  }

  private dataplaneRefresh(k: K): void {
    if (this.onDrift === undefined) {
      this.refresh(k);
      return;
    }
    const was = this.isPending(k);
    this.refresh(k);
    if (!was && this.isPending(k)) this.onDrift(k);
  }

  private refresh(k: K): void {
    const want = this.desiredMap.get(k);
    const have = this.dataplaneMap.get(k);
    if (want === undefined) {
      this.updates.delete(k);
      if (have === undefined) this.deletions.delete(k);
      else this.deletions.add(k);
      return;
    }
    this.deletions.delete(k);
    if (have !== undefined && this.equal(want, have)) this.updates.delete(k);
    else this.updates.set(k, want);
  }
}
