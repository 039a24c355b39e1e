// The YAML directory backend across processes: child Node processes (test/yaml/child.ts,
// importing the built backend) race compare-and-swap writes on one directory while this
// process watches, and a lock holder that dies or hangs never wedges the others.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ResourceFileError } from '../src/backends/yaml/index.js';
import type { WatchEvent } from '../src/store/backend.js';
import { UnavailableError } from '../src/store/errors.js';
import { res, take } from './conformance/suite.js';
import { next, spawnChild, store } from './yaml/helpers.js';

const stores: { cleanup: () => Promise<void> }[] = [];
after(async () => {
  for (const s of stores) await s.cleanup();
});

function fresh(opts: Parameters<typeof store>[0] = {}): ReturnType<typeof store> {
  const s = store(opts);
  stores.push(s);
  return s;
}

describe('YAML directory backend: processes', () => {
  it('four_processes_incrementing_one_counter_by_compare_and_swap_lose_no_update_and_the_watcher_sees_each_once_in_order', async () => {
    const s = fresh();
    const b = await s.open();
    await b.create(res('IPAMBlock', 'counter', { n: 0 }));
    const { revision } = await b.list('IPAMBlock');
    const w = b.watch('IPAMBlock', { revision });
    try {
      const started = Date.now();
      const children = Array.from({ length: 4 }, () => spawnChild(['counter', s.root, 'counter', '200']));
      const seen: WatchEvent[] = [];
      const watching = (async () => {
        for (;;) {
          const [e] = await take(w, 1, 60_000);
          seen.push(e!);
          if (e?.type === 'modified' && (e.object.spec as { n: number }).n >= 800) return;
        }
      })();
      const outs = await Promise.all(children.map((c) => c.done));
      await watching;
      const ms = Date.now() - started;
      const conflicts = outs.reduce((sum, o) => sum + (JSON.parse(o) as { conflicts: number }).conflicts, 0);
      console.log(`# 800 cross-process CAS increments in ${ms} ms (${conflicts} conflicts retried)`);
      assert.deepEqual((await b.get({ kind: 'IPAMBlock', name: 'counter' }))?.spec, { n: 800 });
      assert.equal(seen.length, 800);
      let rev = Number(revision);
      seen.forEach((e, i) => {
        assert.equal(e.type, 'modified');
        assert.ok(e.type === 'modified');
        assert.equal((e.object.spec as { n: number }).n, i + 1, `event ${i} carries n=${i + 1}`);
        assert.ok(Number(e.revision) > rev, 'revisions increase');
        assert.equal(e.object.metadata.resourceVersion, e.revision);
        rev = Number(e.revision);
      });
    } finally {
      w.close();
    }
  });

  it('processes_creating_distinct_objects_at_once_lose_none', async () => {
    const s = fresh();
    const b = await s.open();
    const { revision } = await b.list('IPAMHandle');
    const w = b.watch('IPAMHandle', { revision });
    try {
      const children = Array.from({ length: 4 }, (_, i) => spawnChild(['create', s.root, `p${i}`, '50']));
      await Promise.all(children.map((c) => c.done));
      const evs = await take(w, 200, 20_000);
      const want = Array.from({ length: 4 }, (_, i) => Array.from({ length: 50 }, (_, j) => `p${i}-${j}`))
        .flat()
        .sort();
      assert.deepEqual(evs.map((e) => (e.type === 'added' ? e.object.metadata.name : e.type)).sort(), want);
      assert.deepEqual((await b.list('IPAMHandle')).items.map((o) => o.metadata.name).sort(), want);
    } finally {
      w.close();
    }
  });

  it('a_lock_held_by_another_process_times_out_with_UnavailableError_naming_the_lock_file', async () => {
    const s = fresh({ lockTimeoutMs: 300 });
    const b = await s.open();
    const holder = spawnChild(['hold-lock', s.root]);
    try {
      await holder.waitFor('locked');
      const started = Date.now();
      await assert.rejects(b.create(res('IPPool', 'p', {})), (e: unknown) => {
        assert.ok(e instanceof UnavailableError, String(e));
        assert.ok(e.message.includes(`${s.root}/.tabby/lock`), e.message);
        return true;
      });
      assert.ok(Date.now() - started >= 290, 'waited for the timeout');
      // Reads need no lock.
      assert.equal(await b.get({ kind: 'IPPool', name: 'p' }), undefined);
      // A watch that cannot list yet reports the error and keeps trying.
      const w = b.watch('IPPool');
      try {
        const e = await next(w, ['error', 'resync'], 3000);
        assert.equal(e.type, 'error');
        assert.ok(e.type === 'error' && !(e.error instanceof ResourceFileError));
        holder.proc.stdin!.end();
        await holder.done;
        assert.equal((await next(w, ['resync'], 5000)).type, 'resync');
      } finally {
        w.close();
      }
    } finally {
      holder.proc.kill('SIGKILL');
      await holder.done.catch(() => undefined);
    }
  });

  it('a_lock_holder_killed_with_SIGKILL_does_not_block_the_others', async () => {
    const s = fresh({ lockTimeoutMs: 5000 });
    const b = await s.open();
    const holder = spawnChild(['hold-lock', s.root]);
    await holder.waitFor('locked');
    const writing = b.create(res('IPPool', 'after-kill', { cidr: '10.67.0.0/16' }));
    setTimeout(() => holder.proc.kill('SIGKILL'), 200);
    const started = Date.now();
    const made = await writing;
    assert.ok(Date.now() - started < 2000, 'the write went ahead soon after the kill');
    assert.deepEqual(made.spec, { cidr: '10.67.0.0/16' });
    await assert.rejects(holder.done, /SIGKILL/);
  });
});
