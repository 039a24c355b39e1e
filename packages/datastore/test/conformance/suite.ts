// The Backend contract (src/store/backend.ts), as tests that run unchanged on every backend:
// memory, YAML directory, etcd v3 and Kubernetes. A backend's test file calls
// `backendConformance(name, setup)`; `setup` gives a fresh, empty backend per test.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AnyResource, Backend, Watch, WatchEvent } from '../../src/store/backend.js';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../../src/store/errors.js';
import { API_VERSION } from '../../src/resources/meta.js';
import type { Kind } from '../../src/resources/kinds.js';

export interface ConformanceTarget {
  readonly backend: Backend;
  /**
   * For persistent backends: a second, independent instance on the same store (another
   * process would see this). Its writes must be seen by the first and the reverse.
   */
  readonly second?: () => Promise<Backend>;
  readonly cleanup: () => Promise<void>;
}

export function res(kind: Kind, name: string, spec: unknown, namespace?: string): AnyResource {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: namespace === undefined ? { name } : { name, namespace },
    spec,
  };
}

interface Reader<R> {
  readonly it: AsyncIterator<WatchEvent<R>>;
  /** A next() that a timed-out wait left running: the next wait takes it over. */
  pending: Promise<IteratorResult<WatchEvent<R>>> | undefined;
}
const readers = new WeakMap<object, Reader<unknown>>();

/** The watch's next event, without losing one to an earlier wait that timed out. */
function next<R>(w: Watch<R>): Promise<IteratorResult<WatchEvent<R>>> {
  let r = readers.get(w) as Reader<R> | undefined;
  if (r === undefined) {
    r = { it: w[Symbol.asyncIterator](), pending: undefined };
    readers.set(w, r);
  }
  const reader = r;
  const p = reader.pending ?? reader.it.next();
  reader.pending = p;
  void p.then(() => {
    if (reader.pending === p) reader.pending = undefined;
  });
  return p;
}

/** Reads events until `n` have arrived or `ms` pass (then fails, naming what came). */
export async function take<R extends AnyResource>(
  w: Watch<R>,
  n: number,
  ms = 5000,
): Promise<WatchEvent<R>[]> {
  const out: WatchEvent<R>[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      next(w),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, left)))),
    ]);
    clearTimeout(timer);
    if (r === 'timeout')
      assert.fail(`wanted ${n} watch events, got ${out.length}: ${JSON.stringify(out.map(brief))}`);
    if (r.done === true) assert.fail(`watch ended after ${out.length} events`);
    if (r.value.type === 'bookmark' || r.value.type === 'error') continue;
    out.push(r.value);
  }
  return out;
}

/** Asserts that no change event arrives within `ms` (bookmarks and errors are ignored). */
export async function quiet(w: Watch, ms = 300): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      next(w),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left))),
    ]);
    clearTimeout(timer);
    if (r === 'timeout' || r.done === true) return;
    if (r.value.type === 'bookmark' || r.value.type === 'error') continue;
    assert.fail(`unexpected watch event ${JSON.stringify(brief(r.value))}`);
  }
}

function brief(e: WatchEvent<AnyResource>): unknown {
  switch (e.type) {
    case 'added':
    case 'modified':
    case 'deleted':
      return [e.type, e.object.metadata.name];
    case 'resync':
      return ['resync', e.items.map((i) => i.metadata.name)];
    case 'bookmark':
      return ['bookmark'];
    case 'error':
      return ['error', e.error.message];
  }
}

const names = (items: AnyResource[]): string[] => items.map((i) => i.metadata.name).sort();

export function backendConformance(
  name: string,
  setup: () => Promise<ConformanceTarget>,
  opts: { /** Setup's targets have `second`. */ readonly shared?: boolean } = {},
): void {
  describe(`Backend conformance: ${name}`, () => {
    const open: ConformanceTarget[] = [];
    const fresh = async (): Promise<ConformanceTarget> => {
      const t = await setup();
      open.push(t);
      return t;
    };
    after(async () => {
      for (const t of open) await t.cleanup();
    });

    it('create_then_get_returns_the_object_with_version_uid_and_timestamp', async () => {
      const { backend: b } = await fresh();
      const spec = { cidr: '10.65.0.0/16', blockSize: 26, nested: { list: [1, null, 'x'], empty: {} } };
      const made = await b.create(res('IPPool', 'pool-a', spec));
      assert.ok(made.metadata.resourceVersion !== undefined && made.metadata.resourceVersion !== '');
      assert.ok(made.metadata.uid !== undefined && made.metadata.uid !== '');
      assert.ok(made.metadata.creationTimestamp !== undefined);
      assert.deepEqual(made.spec, spec);
      const got = await b.get({ kind: 'IPPool', name: 'pool-a' });
      assert.deepEqual(got, made);
    });

    it('labels_annotations_and_nulls_inside_lists_survive_the_round_trip', async () => {
      const { backend: b } = await fresh();
      const o = res('IPAMBlock', '10-65-1-0-26', {
        cidr: '10.65.1.0/26',
        allocations: [0, null, null, 1],
        attributes: [{ handle_id: 'k8s-pod-network.abc', secondary: { node: 'n1', pod: 'p' } }],
      });
      o.metadata.labels = { 'tabby.dev/node': 'n1', a: '' };
      o.metadata.annotations = { note: 'line one\nline two: "quoted"' };
      await b.create(o);
      const got = await b.get({ kind: 'IPAMBlock', name: '10-65-1-0-26' });
      assert.deepEqual(got?.spec, o.spec);
      assert.deepEqual(got?.metadata.labels, o.metadata.labels);
      assert.deepEqual(got?.metadata.annotations, o.metadata.annotations);
    });

    it('get_of_a_missing_object_is_undefined', async () => {
      const { backend: b } = await fresh();
      assert.equal(await b.get({ kind: 'BGPPeer', name: 'nope' }), undefined);
    });

    it('create_of_an_existing_name_throws_AlreadyExists_and_changes_nothing', async () => {
      const { backend: b } = await fresh();
      const first = await b.create(res('BGPPeer', 'tor', { peerIP: '10.0.0.1' }));
      await assert.rejects(b.create(res('BGPPeer', 'tor', { peerIP: '10.0.0.2' })), AlreadyExistsError);
      assert.deepEqual(await b.get({ kind: 'BGPPeer', name: 'tor' }), first);
    });

    it('the_same_name_under_two_kinds_is_two_objects', async () => {
      const { backend: b } = await fresh();
      await b.create(res('BGPPeer', 'same', { a: 1 }));
      await b.create(res('BGPFilter', 'same', { b: 2 }));
      assert.deepEqual((await b.get({ kind: 'BGPPeer', name: 'same' }))?.spec, { a: 1 });
      assert.deepEqual((await b.get({ kind: 'BGPFilter', name: 'same' }))?.spec, { b: 2 });
    });

    it('update_with_the_current_version_stores_and_returns_a_new_version_keeping_uid', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('Node', 'node-1', { bgp: { ipv4Address: '192.168.1.1/24' } }));
      const v2 = await b.update({ ...v1, spec: { bgp: { ipv4Address: '192.168.1.2/24' } } });
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      assert.equal(v2.metadata.uid, v1.metadata.uid);
      assert.equal(v2.metadata.creationTimestamp, v1.metadata.creationTimestamp);
      assert.deepEqual(await b.get({ kind: 'Node', name: 'node-1' }), v2);
    });

    it('update_with_a_stale_version_throws_Conflict_and_changes_nothing', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('Node', 'node-1', { n: 1 }));
      const v2 = await b.update({ ...v1, spec: { n: 2 } });
      await assert.rejects(b.update({ ...v1, spec: { n: 3 } }), ConflictError);
      assert.deepEqual(await b.get({ kind: 'Node', name: 'node-1' }), v2);
    });

    it('update_without_a_version_throws_Conflict', async () => {
      const { backend: b } = await fresh();
      await b.create(res('Node', 'node-1', { n: 1 }));
      await assert.rejects(b.update(res('Node', 'node-1', { n: 2 })), ConflictError);
    });

    it('update_of_a_missing_object_throws_NotFound', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('Node', 'node-1', { n: 1 }));
      await b.delete({ kind: 'Node', name: 'node-1' });
      await assert.rejects(b.update({ ...v1, spec: { n: 2 } }), NotFoundError);
    });

    it('concurrent_compare_and_swap_lets_exactly_one_writer_win', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('IPAMBlock', 'blk', { n: 0 }));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => b.update({ ...v1, spec: { n: i + 1 } })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, 'exactly one update wins');
      for (const r of results)
        if (r.status === 'rejected') assert.ok(r.reason instanceof ConflictError, String(r.reason));
      const winner = (won[0] as PromiseFulfilledResult<AnyResource>).value;
      assert.deepEqual(await b.get({ kind: 'IPAMBlock', name: 'blk' }), winner);
    });

    it('delete_returns_the_object_and_a_second_delete_throws_NotFound', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('IPAMHandle', 'k8s-pod-network.0123abcd', { handleID: 'x' }));
      const gone = await b.delete({ kind: 'IPAMHandle', name: 'k8s-pod-network.0123abcd' });
      assert.deepEqual(gone.spec, v1.spec);
      assert.equal(await b.get({ kind: 'IPAMHandle', name: 'k8s-pod-network.0123abcd' }), undefined);
      await assert.rejects(b.delete({ kind: 'IPAMHandle', name: 'k8s-pod-network.0123abcd' }), NotFoundError);
    });

    it('delete_with_a_stale_version_throws_Conflict_and_keeps_the_object', async () => {
      const { backend: b } = await fresh();
      const v1 = await b.create(res('BlockAffinity', 'n1-10-65-1-0-26', { state: 'pending' }));
      const v2 = await b.update({ ...v1, spec: { state: 'confirmed' } });
      await assert.rejects(
        b.delete(
          { kind: 'BlockAffinity', name: 'n1-10-65-1-0-26' },
          { resourceVersion: v1.metadata.resourceVersion! },
        ),
        ConflictError,
      );
      assert.deepEqual(await b.get({ kind: 'BlockAffinity', name: 'n1-10-65-1-0-26' }), v2);
      await b.delete(
        { kind: 'BlockAffinity', name: 'n1-10-65-1-0-26' },
        { resourceVersion: v2.metadata.resourceVersion! },
      );
      assert.equal(await b.get({ kind: 'BlockAffinity', name: 'n1-10-65-1-0-26' }), undefined);
    });

    it('list_returns_one_kind_and_filters_namespaces', async () => {
      const { backend: b } = await fresh();
      await b.create(res('IPPool', 'p1', {}));
      await b.create(res('IPPool', 'p2', {}));
      await b.create(res('BGPPeer', 'x', {}));
      await b.create(res('WorkloadEndpoint', 'w1', {}, 'default'));
      await b.create(res('WorkloadEndpoint', 'w2', {}, 'kube-system'));
      await b.create(res('WorkloadEndpoint', 'w3', {}, 'default'));
      assert.deepEqual(names((await b.list('IPPool')).items), ['p1', 'p2']);
      assert.deepEqual(names((await b.list('WorkloadEndpoint')).items), ['w1', 'w2', 'w3']);
      assert.deepEqual(names((await b.list('WorkloadEndpoint', { namespace: 'default' })).items), [
        'w1',
        'w3',
      ]);
      assert.deepEqual((await b.list('BGPFilter')).items, []);
      const w = await b.get({ kind: 'WorkloadEndpoint', name: 'w2', namespace: 'kube-system' });
      assert.equal(w?.metadata.namespace, 'kube-system');
      assert.equal(await b.get({ kind: 'WorkloadEndpoint', name: 'w2', namespace: 'default' }), undefined);
    });

    it('a_watch_from_a_list_revision_sees_every_later_change_in_order_and_nothing_earlier', async () => {
      const { backend: b } = await fresh();
      await b.create(res('IPPool', 'before', {}));
      const { revision } = await b.list('IPPool');
      const w = b.watch('IPPool', { revision });
      try {
        const a = await b.create(res('IPPool', 'a', { v: 1 }));
        await b.create(res('BGPPeer', 'other-kind', {}));
        const a2 = await b.update({ ...a, spec: { v: 2 } });
        await b.delete({ kind: 'IPPool', name: 'before' });
        const evs = await take(w, 3);
        assert.deepEqual(
          evs.map((e) => [e.type, 'object' in e ? e.object.metadata.name : '']),
          [
            ['added', 'a'],
            ['modified', 'a'],
            ['deleted', 'before'],
          ],
        );
        const [added, modified] = evs as [
          Extract<WatchEvent, { object: unknown }>,
          Extract<WatchEvent, { object: unknown }>,
        ];
        assert.deepEqual(added.object.spec, { v: 1 });
        assert.deepEqual(modified.object.spec, { v: 2 });
        assert.equal(modified.object.metadata.resourceVersion, a2.metadata.resourceVersion);
        await quiet(w);
      } finally {
        w.close();
      }
    });

    it('changes_made_between_list_and_watch_are_replayed', async () => {
      const { backend: b } = await fresh();
      const { revision } = await b.list('BGPPeer');
      await b.create(res('BGPPeer', 'early', {}));
      const w = b.watch('BGPPeer', { revision });
      try {
        const evs = await take(w, 1);
        const e = evs[0]!;
        // Replaying is the contract; a backend that lost that history may resync instead.
        if (e.type === 'resync') assert.deepEqual(names(e.items), ['early']);
        else assert.deepEqual([e.type, 'object' in e && e.object.metadata.name], ['added', 'early']);
      } finally {
        w.close();
      }
    });

    it('a_watch_without_a_revision_starts_with_a_resync_of_the_current_state', async () => {
      const { backend: b } = await fresh();
      await b.create(res('BGPFilter', 'f1', {}));
      await b.create(res('BGPFilter', 'f2', {}));
      const w = b.watch('BGPFilter');
      try {
        const [first] = await take(w, 1);
        assert.ok(first?.type === 'resync', `first event is a resync, not ${first?.type}`);
        assert.deepEqual(names(first.items), ['f1', 'f2']);
        await b.create(res('BGPFilter', 'f3', {}));
        const [next] = await take(w, 1);
        assert.deepEqual(
          [next?.type, next !== undefined && 'object' in next && next.object.metadata.name],
          ['added', 'f3'],
        );
      } finally {
        w.close();
      }
    });

    it('a_namespaced_watch_sees_only_its_namespace', async () => {
      const { backend: b } = await fresh();
      const { revision } = await b.list('WorkloadEndpoint');
      const w = b.watch('WorkloadEndpoint', { revision, namespace: 'ns-a' });
      try {
        await b.create(res('WorkloadEndpoint', 'x', {}, 'ns-b'));
        await b.create(res('WorkloadEndpoint', 'y', {}, 'ns-a'));
        const [e] = await take(w, 1);
        assert.equal(e !== undefined && 'object' in e && e.object.metadata.name, 'y');
      } finally {
        w.close();
      }
    });

    it('close_ends_a_pending_iteration', async () => {
      const { backend: b } = await fresh();
      const w = b.watch('Node');
      const it = w[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done !== true && first.value.type, 'resync');
      const pending = it.next();
      w.close();
      const r = await pending;
      assert.equal(r.done, true);
    });

    const shared = opts.shared === true ? it : undefined;
    shared?.('a_second_instance_on_the_same_store_sees_writes_and_loses_compare_and_swap_races', async () => {
      const target = await fresh();
      assert.ok(target.second !== undefined, 'a shared backend gives setup().second');
      const b = target.backend;
      const other = await target.second();
      try {
        const { revision } = await b.list('IPAMBlock');
        const w = b.watch('IPAMBlock', { revision });
        try {
          const v1 = await other.create(res('IPAMBlock', 'shared', { n: 1 }));
          const [e] = await take(w, 1);
          assert.equal(e?.type, 'added');
          const seen = await b.get({ kind: 'IPAMBlock', name: 'shared' });
          assert.deepEqual(seen, v1);
          await b.update({ ...v1, spec: { n: 2 } });
          await assert.rejects(other.update({ ...v1, spec: { n: 3 } }), ConflictError);
          assert.deepEqual((await other.get({ kind: 'IPAMBlock', name: 'shared' }))?.spec, { n: 2 });
        } finally {
          w.close();
        }
      } finally {
        await other.close();
      }
    });
  });
}
