// Datastore: the typed, validating face of a Backend. Everything going in is parsed
// (apiVersion, defaults, schema, the kind's own checks, canonical form) and checked against
// what is already stored (an IPPool may not overlap another; a pool's cidr and blockSize
// never change); everything coming out is parsed again, because files can be edited by hand
// and other writers exist. Nothing invalid is stored; nothing invalid is handed on.
import type { Kind } from '../resources/kinds.js';
import { keyOf } from '../resources/meta.js';
import type { ResourceIssue } from '../resources/parse.js';
import { parseKind, parseResource } from '../resources/parse.js';
import type { AnyKindResource, ResourceOf } from '../resources/registry.js';
import type { IPPool } from '../resources/ippool.js';
import { cidrsOverlap, parseCidr } from '../schema/index.js';
import type { Backend, Watch, WatchEvent, WatchOptions } from './backend.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';

export interface DatastoreOptions {
  /** A stored object that is not valid (hand-edited, or written by an older version): it is skipped. */
  readonly onInvalid?: (issues: readonly ResourceIssue[]) => void;
}

export class Datastore {
  constructor(
    readonly backend: Backend,
    private readonly opts: DatastoreOptions = {},
  ) {}

  /** A stored object, or undefined; throws ValidationError when what is stored is not valid. */
  async get<K extends Kind>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K> | undefined> {
    const raw = await this.backend.get(namespace === undefined ? { kind, name } : { kind, name, namespace });
    if (raw === undefined) return undefined;
    const r = parseKind(kind, raw);
    if (!r.ok) throw new ValidationError(r.issues);
    return r.resource;
  }

  /** Every valid object of a kind; invalid ones are reported to onInvalid and left out. */
  async list<K extends Kind>(
    kind: K,
    opts: { readonly namespace?: string } = {},
  ): Promise<{ items: ResourceOf<K>[]; revision: string }> {
    const { items, revision } = await this.backend.list(kind, opts);
    return { items: this.parseAll(kind, items), revision };
  }

  private parseAll<K extends Kind>(kind: K, raws: readonly unknown[]): ResourceOf<K>[] {
    const out: ResourceOf<K>[] = [];
    for (const raw of raws) {
      const r = parseKind(kind, raw);
      if (r.ok) out.push(r.resource);
      else this.opts.onInvalid?.(r.issues);
    }
    return out;
  }

  /**
   * The backend's watch, parsed. An object that turns invalid is not passed on: the watcher
   * gets an `error` event naming the problem and keeps the last valid state (a bad hand edit
   * must not tear down what the old object set up).
   */
  watch<K extends Kind>(kind: K, opts: WatchOptions = {}): Watch<ResourceOf<K>> {
    const inner = this.backend.watch(kind, opts);
    const it = inner[Symbol.asyncIterator]();
    const parse = (ev: WatchEvent): WatchEvent<ResourceOf<K>> | undefined => {
      switch (ev.type) {
        case 'added':
        case 'modified':
        case 'deleted': {
          const r = parseKind(kind, ev.object);
          if (r.ok) return { type: ev.type, object: r.resource, revision: ev.revision };
          this.opts.onInvalid?.(r.issues);
          // A deleted object goes whatever its content; consumers match it by name.
          if (ev.type === 'deleted')
            return { type: 'deleted', object: ev.object as ResourceOf<K>, revision: ev.revision };
          return { type: 'error', error: new ValidationError(r.issues) };
        }
        case 'resync':
          return { type: 'resync', items: this.parseAll(kind, ev.items), revision: ev.revision };
        case 'bookmark':
        case 'error':
          return ev;
      }
    };
    return {
      close: () => inner.close(),
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<WatchEvent<ResourceOf<K>>>> => {
          for (;;) {
            const n = await it.next();
            if (n.done === true) return { value: undefined, done: true };
            const ev = parse(n.value);
            if (ev !== undefined) return { value: ev, done: false };
          }
        },
        return: () => {
          inner.close();
          return Promise.resolve({ value: undefined, done: true });
        },
      }),
    };
  }

  /** Parses and checks `doc` (ours or Calico's apiVersion) and stores it as new. */
  async create(doc: unknown): Promise<AnyKindResource> {
    const r = this.parse(doc);
    await this.crossCheck(r, undefined);
    return this.parse(await this.backend.create(withoutServerFields(r)));
  }

  /** Compare-and-swap update: `doc` must carry the resourceVersion it was read at. */
  async update(doc: unknown): Promise<AnyKindResource> {
    const r = this.parse(doc);
    const cur = await this.backend.get(keyOf(r));
    if (cur === undefined) throw new NotFoundError(keyOf(r));
    if (cur.metadata.resourceVersion !== r.metadata.resourceVersion)
      throw new ConflictError(keyOf(r), r.metadata.resourceVersion, cur.metadata.resourceVersion);
    const old = parseResource(cur);
    await this.crossCheck(r, old.ok ? old.resource : undefined);
    return this.parse(await this.backend.update(r));
  }

  /** Create, or update what is there (last writer wins): `kubectl apply` for our kinds. */
  async apply(doc: unknown): Promise<AnyKindResource> {
    const r = this.parse(doc);
    for (let attempt = 0; ; attempt++) {
      const cur = await this.backend.get(keyOf(r));
      try {
        if (cur === undefined) return await this.create(r);
        return await this.update({
          ...r,
          metadata: {
            ...r.metadata,
            ...(cur.metadata.resourceVersion === undefined
              ? {}
              : { resourceVersion: cur.metadata.resourceVersion }),
          },
        });
      } catch (e) {
        // Someone wrote in between: read again. Past a few rounds something is fighting us.
        if (!(e instanceof ConflictError || e instanceof NotFoundError) || attempt >= 5) throw e;
      }
    }
  }

  async delete<K extends Kind>(
    kind: K,
    name: string,
    opts: { readonly namespace?: string; readonly resourceVersion?: string } = {},
  ): Promise<void> {
    const key = opts.namespace === undefined ? { kind, name } : { kind, name, namespace: opts.namespace };
    await this.backend.delete(
      key,
      opts.resourceVersion === undefined ? {} : { resourceVersion: opts.resourceVersion },
    );
  }

  /**
   * Every document of a YAML manifest (several, `---` separated), all checked before any is
   * stored: one bad document stores nothing. Returns what was stored, in order.
   */
  async applyManifest(text: string, source = 'manifest'): Promise<AnyKindResource[]> {
    // Loaded here: a Datastore on etcd or Kubernetes needs no YAML library but for manifests.
    const { readManifest } = await import('../resources/manifest.js');
    const issues: ResourceIssue[] = [];
    const parsed: AnyKindResource[] = [];
    readManifest(text).forEach((d, i) => {
      const where = `${source} document ${i + 1}`;
      if (d.errors.length > 0) {
        issues.push({ resource: where, path: '', reason: `is not valid YAML: ${d.errors[0]!.message}` });
        return;
      }
      const js: unknown = d.toJS();
      if (js === null || js === undefined) return; // an empty document (a trailing ---)
      const r = parseResource(js, where);
      if (r.ok) parsed.push(r.resource);
      else issues.push(...r.issues);
    });
    for (let i = 0; i < parsed.length; i++)
      issues.push(
        ...this.overlapsWithin(
          parsed[i]!,
          parsed.slice(0, i).filter((p) => p.metadata.name !== parsed[i]!.metadata.name),
        ),
      );
    if (issues.length > 0) throw new ValidationError(issues);
    const out: AnyKindResource[] = [];
    for (const r of parsed) out.push(await this.apply(r));
    return out;
  }

  private parse(doc: unknown): AnyKindResource {
    const r = parseResource(doc);
    if (!r.ok) throw new ValidationError(r.issues);
    return r.resource;
  }

  /** Checks that need other stored objects. `old` is the stored version on update. */
  private async crossCheck(r: AnyKindResource, old: AnyKindResource | undefined): Promise<void> {
    if (r.kind !== 'IPPool') return;
    const issues: ResourceIssue[] = [];
    const resource = `IPPool ${r.metadata.name}`;
    if (old?.kind === 'IPPool') {
      if (old.spec.cidr !== r.spec.cidr)
        issues.push({
          resource,
          path: 'spec.cidr',
          reason: `cannot be changed (was ${old.spec.cidr}); create a new pool and migrate`,
        });
      if (old.spec.blockSize !== r.spec.blockSize)
        issues.push({
          resource,
          path: 'spec.blockSize',
          reason: `cannot be changed (was ${old.spec.blockSize}); create a new pool and migrate`,
        });
    }
    const others = (await this.list('IPPool')).items.filter((p) => p.metadata.name !== r.metadata.name);
    issues.push(...this.overlapsWithin(r, others));
    if (issues.length > 0) throw new ValidationError(issues);
  }

  private overlapsWithin(r: AnyKindResource, others: readonly AnyKindResource[]): ResourceIssue[] {
    if (r.kind !== 'IPPool') return [];
    const mine = parseCidr(r.spec.cidr);
    if (mine === undefined) return [];
    const out: ResourceIssue[] = [];
    for (const o of others) {
      if (o.kind !== 'IPPool') continue;
      const theirs = parseCidr((o as IPPool).spec.cidr);
      if (theirs !== undefined && cidrsOverlap(mine, theirs))
        out.push({
          resource: `IPPool ${r.metadata.name}`,
          path: 'spec.cidr',
          reason: `${r.spec.cidr} overlaps IPPool ${o.metadata.name} (${(o as IPPool).spec.cidr})`,
        });
    }
    return out;
  }
}

/** A new object takes its identity from the store, not from the document. */
function withoutServerFields(r: AnyKindResource): AnyKindResource {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...metadata } = r.metadata;
  return { ...r, metadata };
}
