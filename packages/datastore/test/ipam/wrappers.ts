// Backend wrappers for IPAM tests: one that records every write, one that fails writes
// on demand (before they happen, as a CAS loss or an unreachable store does), and one that
// hands every call's completion to a fast-check scheduler so concurrent requests interleave.
import type { Scheduler } from 'fast-check';
import type { AnyResource, Backend, ListResult, Watch, WatchOptions } from '../../src/store/backend.js';
import type { Kind } from '../../src/resources/kinds.js';
import type { ResourceKey } from '../../src/resources/meta.js';

export type Op = 'get' | 'list' | 'create' | 'update' | 'delete';

export interface Call {
  readonly op: Op;
  readonly kind: Kind;
  readonly name?: string;
  /** For BlockAffinity writes: the state written. */
  readonly state?: string;
}

/** Wraps a backend; `fault` may return an error to throw instead of doing the call. */
export class HookBackend implements Backend {
  readonly type: string;
  readonly calls: Call[] = [];
  fault: (c: Call) => Error | undefined = () => undefined;
  /** Wraps each call's promise (a scheduler, for instance). */
  around: <T>(c: Call, p: () => Promise<T>) => Promise<T> = (_c, p) => p();

  constructor(readonly inner: Backend) {
    this.type = inner.type;
  }

  private run<T>(c: Call, f: () => Promise<T>): Promise<T> {
    return this.around(c, () => {
      if (c.op !== 'get' && c.op !== 'list') this.calls.push(c);
      const e = this.fault(c);
      return e === undefined ? f() : Promise.reject(e);
    });
  }

  get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    return this.run({ op: 'get', kind: key.kind, name: key.name }, () => this.inner.get(key));
  }
  list(kind: Kind, opts?: { readonly namespace?: string }): Promise<ListResult> {
    return this.run({ op: 'list', kind }, () => this.inner.list(kind, opts));
  }
  watch(kind: Kind, opts?: WatchOptions): Watch {
    return this.inner.watch(kind, opts);
  }
  create(obj: AnyResource): Promise<AnyResource> {
    return this.run(callOf('create', obj), () => this.inner.create(obj));
  }
  update(obj: AnyResource): Promise<AnyResource> {
    return this.run(callOf('update', obj), () => this.inner.update(obj));
  }
  delete(key: ResourceKey<Kind>, opts?: { readonly resourceVersion?: string }): Promise<AnyResource> {
    return this.run({ op: 'delete', kind: key.kind, name: key.name }, () => this.inner.delete(key, opts));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function callOf(op: Op, o: AnyResource): Call {
  const state = o.kind === 'BlockAffinity' ? (o.spec as { state?: string }).state : undefined;
  return state === undefined
    ? { op, kind: o.kind, name: o.metadata.name }
    : { op, kind: o.kind, name: o.metadata.name, state };
}

/** Every backend call completes only when the scheduler says so. */
export function scheduled(inner: Backend, s: Scheduler): HookBackend {
  const b = new HookBackend(inner);
  b.around = (c, p) => s.schedule(Promise.resolve(), `${c.op} ${c.kind} ${c.name ?? ''}`).then(p);
  return b;
}
