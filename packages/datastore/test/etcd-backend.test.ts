// The etcd v3 backend against the shared Backend contract and a real etcd, plus what only
// etcd has: its key layout, compaction, a server restart under a watch, and etcd down.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../src/backends/etcd/index.js';
import type { EtcdBackendOptions } from '../src/backends/etcd/index.js';
import type { Watch, WatchEvent } from '../src/store/backend.js';
import { UnavailableError, ValidationError } from '../src/store/errors.js';
import { backendConformance, quiet, res, take } from './conformance/suite.js';
import { EtcdServer, etcdSkipReason } from '../src/testing/index.js';

const skip = etcdSkipReason();
if (skip !== undefined) {
  it('etcd_backend_tests_need_etcd', { skip }, () => {});
} else {
  const server = await EtcdServer.start();
  const raw = new Etcd3({ hosts: server.endpoint });
  after(async () => {
    raw.close();
    await server.stop();
  });

  // Each test gets its own prefix, so tests never see each other's keys.
  const freshPrefix = (): string => `/tabby-test/${randomUUID()}`;
  const open = (prefix: string, extra: Partial<EtcdBackendOptions> = {}): EtcdBackend =>
    new EtcdBackend({
      endpoints: [server.endpoint],
      prefix,
      watchBackoff: { initialMs: 50, maxMs: 500 },
      ...extra,
    });

  backendConformance(
    'etcd v3',
    () => {
      const prefix = freshPrefix();
      const backend = open(prefix);
      return Promise.resolve({
        backend,
        second: () => Promise.resolve(open(prefix)),
        cleanup: () => backend.close(),
      });
    },
    { shared: true },
  );

  describe('etcd backend', () => {
    const backends: EtcdBackend[] = [];
    const fresh = (prefix = freshPrefix(), extra: Partial<EtcdBackendOptions> = {}): EtcdBackend => {
      const b = open(prefix, extra);
      backends.push(b);
      return b;
    };
    after(async () => {
      for (const b of backends) await b.close();
    });

    it('objects_live_under_prefix_plural_namespace_name_as_json_without_resourceVersion', async () => {
      const prefix = freshPrefix();
      const b = fresh(prefix);
      const wep = await b.create(res('WorkloadEndpoint', 'pod-a', { node: 'n1' }, 'ns-1'));
      const pool = await b.create(res('IPPool', 'default-ipv4-ippool', { cidr: '10.65.0.0/16' }));
      const kvWep = await raw.get(`${prefix}/workloadendpoints/ns-1/pod-a`).exec();
      const kvPool = await raw.get(`${prefix}/ippools/default-ipv4-ippool`).exec();
      assert.equal(kvWep.kvs.length, 1);
      assert.equal(kvPool.kvs.length, 1);
      assert.equal(kvWep.kvs[0]!.mod_revision, wep.metadata.resourceVersion);
      assert.equal(kvPool.kvs[0]!.mod_revision, pool.metadata.resourceVersion);
      const stored = JSON.parse(kvPool.kvs[0]!.value.toString()) as { metadata: Record<string, unknown> };
      assert.equal(stored.metadata['resourceVersion'], undefined);
      assert.equal(stored.metadata['uid'], pool.metadata.uid);
      const { resourceVersion: _rv, ...metadata } = pool.metadata;
      assert.deepEqual(stored, { ...pool, metadata });
    });

    it('the_default_prefix_is_tabby_v1', () => {
      const b = new EtcdBackend({ endpoints: [server.endpoint] });
      backends.push(b);
      assert.equal(b.layout.prefix, '/tabby/v1');
      assert.equal(b.layout.key({ kind: 'Node', name: 'n1' }).toString(), '/tabby/v1/nodes/n1');
    });

    it('a_key_under_another_prefix_or_kind_is_never_seen', async () => {
      const prefix = freshPrefix();
      const b = fresh(prefix);
      const longer = fresh(`${prefix}x`);
      const { revision } = await b.list('IPPool');
      const w = b.watch('IPPool', { revision });
      const wb = b.watch('IPAMBlock', { revision });
      try {
        // A longer prefix, a plural with ours as its prefix, and kinds sharing "ipam".
        await longer.create(res('IPPool', 'p', {}));
        await raw.put(`${prefix}/ippoolsx/p`).value('{}');
        await raw.put(`${prefix}x/ippools/q`).value('{}');
        await b.create(res('IPAMHandle', 'h', {}));
        await b.create(res('IPAMConfig', 'default', {}));
        assert.deepEqual((await b.list('IPPool')).items, []);
        assert.deepEqual((await b.list('IPAMBlock')).items, []);
        assert.equal(await b.get({ kind: 'IPPool', name: 'p' }), undefined);
        // Watches deliver in revision order: anything foreign would come before these.
        const mine = await b.create(res('IPPool', 'mine', {}));
        const blk = await b.create(res('IPAMBlock', 'blk', {}));
        assert.deepEqual(await take(w, 1), [
          { type: 'added', object: mine, revision: mine.metadata.resourceVersion },
        ]);
        assert.deepEqual(await take(wb, 1), [
          { type: 'added', object: blk, revision: blk.metadata.resourceVersion },
        ]);
      } finally {
        w.close();
        wb.close();
      }
    });

    it('names_with_a_slash_and_namespace_mismatches_are_rejected', async () => {
      const b = fresh();
      await assert.rejects(b.create(res('IPPool', 'a/b', {})), ValidationError);
      await assert.rejects(b.create(res('WorkloadEndpoint', 'w', {})), ValidationError);
      await assert.rejects(b.create(res('Node', 'n', {}, 'ns')), ValidationError);
      assert.throws(() => b.watch('Node', { namespace: 'ns' }), ValidationError);
    });

    it('a_deleted_event_carries_the_last_value_at_the_deletion_revision', async () => {
      const b = fresh();
      const { revision } = await b.list('BGPPeer');
      const w = b.watch('BGPPeer', { revision });
      try {
        const v1 = await b.create(res('BGPPeer', 'tor', { peerIP: '10.0.0.1' }));
        await b.delete({ kind: 'BGPPeer', name: 'tor' });
        const after = await b.list('BGPPeer');
        const [, del] = await take(w, 2);
        assert.ok(del?.type === 'deleted');
        assert.deepEqual(del.object.spec, { peerIP: '10.0.0.1' });
        assert.equal(del.object.metadata.uid, v1.metadata.uid);
        assert.equal(del.object.metadata.resourceVersion, after.revision);
        assert.equal(del.revision, after.revision);
      } finally {
        w.close();
      }
    });

    it('update_without_uid_keeps_the_stored_uid_and_timestamp', async () => {
      const b = fresh();
      const v1 = await b.create(res('Node', 'n1', { a: 1 }));
      const bare = res('Node', 'n1', { a: 2 });
      bare.metadata.resourceVersion = v1.metadata.resourceVersion!;
      const v2 = await b.update(bare);
      assert.equal(v2.metadata.uid, v1.metadata.uid);
      assert.equal(v2.metadata.creationTimestamp, v1.metadata.creationTimestamp);
      assert.deepEqual(await b.get({ kind: 'Node', name: 'n1' }), v2);
    });

    it('a_list_larger_than_one_page_is_complete_and_consistent', async () => {
      const b = fresh();
      const n = 1234;
      const made = await Promise.all(
        Array.from({ length: n }, (_, i) => b.create(res('IPAMHandle', `h-${i}`, { i }))),
      );
      const { items, revision } = await b.list('IPAMHandle');
      assert.equal(items.length, n);
      assert.deepEqual(new Set(items.map((o) => o.metadata.name)), new Set(made.map((o) => o.metadata.name)));
      const top = Math.max(...made.map((o) => Number(o.metadata.resourceVersion)));
      assert.ok(Number(revision) >= top);
    });

    it('a_watch_from_a_compacted_revision_starts_with_a_resync', async () => {
      const b = fresh();
      await b.create(res('IPPool', 'old', {}));
      const { revision } = await b.list('IPPool');
      const kept = await b.create(res('IPPool', 'kept', {}));
      await b.delete({ kind: 'IPPool', name: 'old' });
      const now = await b.list('IPPool');
      await raw.kv.compact({ revision: now.revision, physical: true });
      const w = b.watch('IPPool', { revision });
      try {
        const [first] = await take(w, 1);
        assert.ok(first?.type === 'resync', `first event is a resync, not ${first?.type}`);
        assert.deepEqual(first.items, [kept]);
        assert.ok(Number(first.revision) >= Number(now.revision));
        const later = await b.create(res('IPPool', 'later', {}));
        const [next] = await take(w, 1);
        assert.deepEqual(next, { type: 'added', object: later, revision: later.metadata.resourceVersion });
        await quiet(w);
      } finally {
        w.close();
      }
    });

    it('a_watch_from_a_revision_etcd_has_not_reached_starts_with_a_resync', async () => {
      const b = fresh();
      const n = await b.create(res('Node', 'n1', {}));
      // As after etcd was restored from an older backup: its history is not the one we saw.
      const w = b.watch('Node', { revision: '999999999' });
      try {
        const [first] = await take(w, 1);
        assert.ok(first?.type === 'resync', `first event is a resync, not ${first?.type}`);
        assert.deepEqual(first.items, [n]);
        const n2 = await b.create(res('Node', 'n2', {}));
        assert.deepEqual(await take(w, 1), [
          { type: 'added', object: n2, revision: n2.metadata.resourceVersion },
        ]);
      } finally {
        w.close();
      }
    });

    it('a_watch_survives_an_etcd_restart_reporting_errors_and_losing_or_repeating_nothing', async () => {
      const prefix = freshPrefix();
      const b = fresh(prefix);
      const { revision } = await b.list('BGPPeer');
      const w = b.watch('BGPPeer', { revision });
      const seen = record(w);
      try {
        await b.create(res('BGPPeer', 'before', {}));
        await seen.until((evs) => evs.length === 1);
        await server.restart();
        await seen.untilError();
        // Written by another client at once: the watch may still be away and must replay them.
        const writer = fresh(prefix);
        const a = await retryUnavailable(() => writer.create(res('BGPPeer', 'a', { n: 1 })));
        await writer.update({ ...a, spec: { n: 2 } });
        await writer.create(res('BGPPeer', 'b', {}));
        await writer.delete({ kind: 'BGPPeer', name: 'before' });
        await seen.until((evs) => evs.length >= 5, 15_000);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(
          seen.events.map((e) => [e.type, 'object' in e ? e.object.metadata.name : '']),
          [
            ['added', 'before'],
            ['added', 'a'],
            ['modified', 'a'],
            ['added', 'b'],
            ['deleted', 'before'],
          ],
        );
        const revs = seen.events.map((e) => Number('revision' in e ? e.revision : NaN));
        assert.deepEqual(
          revs,
          [...revs].sort((x, y) => x - y),
        );
        assert.ok(seen.errors.every((e) => e instanceof UnavailableError));
        assert.match(seen.errors[0]!.message, new RegExp(`127\\.0\\.0\\.1:${server.clientPort}`));
      } finally {
        w.close();
      }
    });

    it('a_watch_that_reconnects_after_a_compaction_resyncs', async () => {
      const prefix = freshPrefix();
      // A slow backoff leaves time to write and compact before the watch is back.
      const b = fresh(prefix, { watchBackoff: { initialMs: 4000, maxMs: 4000 } });
      const { revision } = await b.list('Node');
      const w = b.watch('Node', { revision });
      const seen = record(w);
      try {
        await b.create(res('Node', 'n1', {}));
        await seen.until((evs) => evs.length === 1);
        await server.restart();
        await seen.untilError();
        const writer = fresh(prefix);
        const n2 = await retryUnavailable(() => writer.create(res('Node', 'n2', {})));
        // Compacting at n2's own revision would keep it watchable: go one write further.
        await writer.create(res('Node', 'n3', {}));
        await writer.delete({ kind: 'Node', name: 'n3' });
        const { revision: now } = await writer.list('Node');
        await raw.kv.compact({ revision: now, physical: true });
        await seen.until((evs) => evs.length === 2, 15_000);
        const resync = seen.events[1]!;
        assert.ok(resync.type === 'resync', `a resync, not ${resync.type}`);
        assert.deepEqual(resync.items.map((o) => o.metadata.name).sort(), ['n1', 'n2']);
        assert.deepEqual(
          resync.items.find((o) => o.metadata.name === 'n2'),
          n2,
        );
      } finally {
        w.close();
      }
    });

    it('operations_fail_fast_with_Unavailable_naming_the_endpoint_when_etcd_is_down', async () => {
      const port = server.clientPort + 1000; // outside every test range: nothing listens there
      const down = fresh(freshPrefix(), { endpoints: [`http://127.0.0.1:${port}`], dialTimeoutMs: 1000 });
      for (const op of [
        () => down.get({ kind: 'Node', name: 'n' }),
        () => down.list('Node'),
        () => down.create(res('Node', 'n', {})),
        () =>
          down.update({
            ...res('Node', 'n', {}),
            metadata: { name: 'n', resourceVersion: '5', uid: 'u', creationTimestamp: 't' },
          }),
        () => down.delete({ kind: 'Node', name: 'n' }, { resourceVersion: '5' }),
      ]) {
        const t0 = Date.now();
        await assert.rejects(op(), (e: unknown) => {
          assert.ok(e instanceof UnavailableError, String(e));
          assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
          return true;
        });
        assert.ok(Date.now() - t0 < 1500, `failed in ${Date.now() - t0} ms`);
      }
    });

    it('an_etcd_that_accepts_but_never_answers_times_out_within_the_dial_timeout', async () => {
      const sockets = new Set<Socket>();
      const silent = createServer((s) => {
        sockets.add(s);
        s.on('error', () => {});
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const addr = silent.address();
      assert.ok(addr !== null && typeof addr === 'object');
      try {
        const b = fresh(freshPrefix(), { endpoints: [`http://127.0.0.1:${addr.port}`], dialTimeoutMs: 500 });
        const t0 = Date.now();
        await assert.rejects(b.get({ kind: 'Node', name: 'n' }), UnavailableError);
        const took = Date.now() - t0;
        assert.ok(took >= 400 && took < 1500, `failed in ${took} ms`);
        const w = b.watch('Node', { revision: '1' });
        const seen = record(w);
        await seen.untilError(3000);
        w.close();
        await b.close();
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => silent.close(r));
      }
    });

    it('close_ends_every_watch_and_later_calls_fail_as_Unavailable', async () => {
      const b = open(freshPrefix());
      const w = b.watch('Node');
      const it = w[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done !== true && first.value.type, 'resync');
      const pending = it.next();
      await b.close();
      assert.equal((await pending).done, true);
      await assert.rejects(b.get({ kind: 'Node', name: 'n' }), UnavailableError);
      const late = b.watch('Node')[Symbol.asyncIterator]();
      assert.equal((await late.next()).done, true);
    });
  });
}

/** Records a watch's change events and errors as they come. */
function record(w: Watch): {
  events: Exclude<WatchEvent, { type: 'bookmark' | 'error' }>[];
  errors: Error[];
  until(pred: (evs: WatchEvent[]) => boolean, ms?: number): Promise<void>;
  untilError(ms?: number): Promise<void>;
} {
  const events: Exclude<WatchEvent, { type: 'bookmark' | 'error' }>[] = [];
  const errors: Error[] = [];
  void (async () => {
    for await (const e of w) {
      if (e.type === 'error') errors.push(e.error);
      else if (e.type !== 'bookmark') events.push(e);
    }
  })();
  const wait = async (done: () => boolean, what: () => string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    events,
    errors,
    until: (pred, ms = 5000) =>
      wait(
        () => pred(events),
        () => `events; got ${JSON.stringify(events.map((e) => e.type))}`,
        ms,
      ),
    untilError: (ms = 5000) =>
      wait(
        () => errors.length > 0,
        () => 'an error event',
        ms,
      ),
  };
}

/** Retries while etcd is still coming back. */
async function retryUnavailable<T>(f: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof UnavailableError) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
