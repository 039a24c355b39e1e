// The in-memory backend: the reference for the Backend contract, and the store for unit and
// property tests (IPAM above all). One revision counter for all kinds, as etcd has; a bounded
// history serves watches from a revision, and an older revision gets a resync.
import { randomUUID } from 'node:crypto';
import type { Kind } from '../resources/kinds.js';
import type { ResourceKey } from '../resources/meta.js';
import { keyOf } from '../resources/meta.js';
import type { AnyResource, Backend, ListResult, Watch, WatchOptions } from './backend.js';
import { AlreadyExistsError, ConflictError, NotFoundError } from './errors.js';
import { EventQueue } from './event-queue.js';

interface Change {
  readonly rev: number;
  readonly type: 'added' | 'modified' | 'deleted';
  readonly object: AnyResource;
}

export class MemoryBackend implements Backend {
  readonly type = 'memory';
  private rev = 0;
  private readonly objects = new Map<string, AnyResource>();
  private readonly history: Change[] = [];
  private readonly watchers = new Set<{
    kind: Kind;
    namespace: string | undefined;
    q: EventQueue<AnyResource>;
  }>();

  constructor(private readonly historyLimit = 10_000) {}

  private static id(k: ResourceKey<Kind>): string {
    return `${k.kind}/${k.namespace ?? ''}/${k.name}`;
  }

  get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    const o = this.objects.get(MemoryBackend.id(key));
    return Promise.resolve(o === undefined ? undefined : structuredClone(o));
  }

  list(kind: Kind, opts: { readonly namespace?: string } = {}): Promise<ListResult> {
    return Promise.resolve({ items: this.snapshot(kind, opts.namespace), revision: String(this.rev) });
  }

  private snapshot(kind: Kind, namespace: string | undefined): AnyResource[] {
    const out: AnyResource[] = [];
    for (const o of this.objects.values())
      if (o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace))
        out.push(structuredClone(o));
    return out;
  }

  watch(kind: Kind, opts: WatchOptions = {}): Watch {
    const w = {
      kind,
      namespace: opts.namespace,
      q: new EventQueue<AnyResource>(() => this.watchers.delete(w)),
    };
    const from = opts.revision === undefined ? undefined : Number(opts.revision);
    const oldest = this.history.length === 0 ? this.rev + 1 : this.history[0]!.rev;
    if (from === undefined || !Number.isInteger(from) || from > this.rev || from + 1 < oldest) {
      w.q.push({ type: 'resync', items: this.snapshot(kind, opts.namespace), revision: String(this.rev) });
    } else {
      for (const c of this.history) if (c.rev > from && this.wants(w, c.object)) this.deliver(w.q, c);
    }
    this.watchers.add(w);
    return w.q;
  }

  private wants(w: { kind: Kind; namespace: string | undefined }, o: AnyResource): boolean {
    return o.kind === w.kind && (w.namespace === undefined || o.metadata.namespace === w.namespace);
  }

  private deliver(q: EventQueue<AnyResource>, c: Change): void {
    q.push({ type: c.type, object: structuredClone(c.object), revision: String(c.rev) });
  }

  private record(type: Change['type'], object: AnyResource): void {
    const c: Change = { rev: this.rev, type, object: structuredClone(object) };
    this.history.push(c);
    if (this.history.length > this.historyLimit)
      this.history.splice(0, this.history.length - this.historyLimit);
    for (const w of this.watchers) if (this.wants(w, object)) this.deliver(w.q, c);
  }

  create(obj: AnyResource): Promise<AnyResource> {
    const key = keyOf(obj);
    const id = MemoryBackend.id(key);
    if (this.objects.has(id)) return Promise.reject(new AlreadyExistsError(key));
    const stored = structuredClone(obj);
    this.rev++;
    stored.metadata.resourceVersion = String(this.rev);
    stored.metadata.uid = randomUUID();
    stored.metadata.creationTimestamp = new Date().toISOString();
    this.objects.set(id, stored);
    this.record('added', stored);
    return Promise.resolve(structuredClone(stored));
  }

  update(obj: AnyResource): Promise<AnyResource> {
    const key = keyOf(obj);
    const cur = this.objects.get(MemoryBackend.id(key));
    if (cur === undefined) return Promise.reject(new NotFoundError(key));
    if (obj.metadata.resourceVersion !== cur.metadata.resourceVersion)
      return Promise.reject(
        new ConflictError(key, obj.metadata.resourceVersion, cur.metadata.resourceVersion),
      );
    const stored = structuredClone(obj);
    this.rev++;
    stored.metadata.resourceVersion = String(this.rev);
    if (cur.metadata.uid !== undefined) stored.metadata.uid = cur.metadata.uid;
    if (cur.metadata.creationTimestamp !== undefined)
      stored.metadata.creationTimestamp = cur.metadata.creationTimestamp;
    this.objects.set(MemoryBackend.id(key), stored);
    this.record('modified', stored);
    return Promise.resolve(structuredClone(stored));
  }

  delete(key: ResourceKey<Kind>, opts: { readonly resourceVersion?: string } = {}): Promise<AnyResource> {
    const id = MemoryBackend.id(key);
    const cur = this.objects.get(id);
    if (cur === undefined) return Promise.reject(new NotFoundError(key));
    if (opts.resourceVersion !== undefined && opts.resourceVersion !== cur.metadata.resourceVersion)
      return Promise.reject(new ConflictError(key, opts.resourceVersion, cur.metadata.resourceVersion));
    this.objects.delete(id);
    this.rev++;
    const gone = structuredClone(cur);
    gone.metadata.resourceVersion = String(this.rev);
    this.record('deleted', gone);
    return Promise.resolve(structuredClone(cur));
  }

  close(): Promise<void> {
    for (const w of [...this.watchers]) w.q.close();
    return Promise.resolve();
  }
}
