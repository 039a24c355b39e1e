// The one storage interface every backend implements (memory, YAML directory, etcd v3,
// Kubernetes). Backends store and return whole resources and know nothing of their
// meaning: defaults, validation and apiVersion conversion happen above them, in Datastore.
//
// Contract (the conformance suite in test/conformance/ checks every point on every backend):
// - Every write returns the stored object with a new metadata.resourceVersion; uid and
//   creationTimestamp are set on create and kept by update.
// - `update` and `delete` with a resourceVersion are compare-and-swap: if the stored
//   object's resourceVersion differs, nothing is written and ConflictError is thrown.
//   `update` requires one; `delete` without one deletes whatever is there.
// - `list` returns a revision R; `watch(kind, { revision: R })` delivers exactly the
//   changes made after that list, in order, none missed, none repeated.
// - A watch without a revision, or one whose revision the backend can no longer serve
//   (compacted, 410 Gone, history lost on restart), starts with a `resync` event carrying
//   the full current list; the consumer replaces its state with it. Transient backend
//   errors are retried inside the watch with backoff (reported as `error` events, which
//   never end it); after reconnecting the watch continues from the last revision it
//   delivered, or resyncs. Only `close()` ends the iteration.
import type { Kind } from '../resources/kinds.js';
import type { Resource, ResourceKey } from '../resources/meta.js';

export type AnyResource = Resource<Kind, unknown>;

export interface ListResult<R = AnyResource> {
  readonly items: R[];
  /** Pass to watch() to see every change after this list. */
  readonly revision: string;
}

export type WatchEvent<R = AnyResource> =
  | { readonly type: 'added' | 'modified'; readonly object: R; readonly revision: string }
  /** `object` is the last stored state, with the resourceVersion of the deletion where known. */
  | { readonly type: 'deleted'; readonly object: R; readonly revision: string }
  /** The full current state: replace everything known of this kind with `items`. */
  | { readonly type: 'resync'; readonly items: R[]; readonly revision: string }
  /** Nothing changed, but the watch has seen everything up to `revision`. */
  | { readonly type: 'bookmark'; readonly revision: string }
  /** A transient failure; the watch retries by itself. */
  | { readonly type: 'error'; readonly error: Error };

export interface Watch<R = AnyResource> extends AsyncIterable<WatchEvent<R>> {
  /** Ends the iteration (a pending `next()` resolves with done) and frees the backend's resources. */
  close(): void;
}

export interface WatchOptions {
  /** From list(); omitted: start with a resync of the current state. */
  readonly revision?: string;
  /** Namespaced kinds only: just this namespace. */
  readonly namespace?: string;
}

export interface Backend {
  /** `memory`, `yaml`, `etcd`, `kubernetes`: for logs and status. */
  readonly type: string;
  get(key: ResourceKey<Kind>): Promise<AnyResource | undefined>;
  list(kind: Kind, opts?: { readonly namespace?: string }): Promise<ListResult>;
  watch(kind: Kind, opts?: WatchOptions): Watch;
  /** Throws AlreadyExistsError. Ignores any resourceVersion on `obj`. */
  create(obj: AnyResource): Promise<AnyResource>;
  /** Compare-and-swap on obj.metadata.resourceVersion: throws ConflictError, NotFoundError. */
  update(obj: AnyResource): Promise<AnyResource>;
  /** Returns the deleted object. Throws NotFoundError, and ConflictError when `resourceVersion` is given and stale. */
  delete(key: ResourceKey<Kind>, opts?: { readonly resourceVersion?: string }): Promise<AnyResource>;
  /** Ends every watch and releases connections, files and timers. */
  close(): Promise<void>;
}
