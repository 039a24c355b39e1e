// The YAML directory backend's own promises: readable atomic files, hand edits that become
// ordinary changes (in every instance), bad files that are skipped and reported, and a
// trimmed journal that sends old revisions to a resync.
import assert from 'node:assert/strict';
import {
  appendFileSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { YamlDirBackend } from '../src/backends/yaml/index.js';
import { ResourceFileError } from '../src/backends/yaml/index.js';
import { render } from '../src/backends/yaml/files.js';
import type { AnyResource, Watch } from '../src/store/backend.js';
import { ConflictError, ValidationError } from '../src/store/errors.js';
import { res, take } from './conformance/suite.js';
import { next, store } from './yaml/helpers.js';

const stores: { cleanup: () => Promise<void> }[] = [];
after(async () => {
  for (const s of stores) await s.cleanup();
});

function fresh(opts: Parameters<typeof store>[0] = {}): ReturnType<typeof store> {
  const s = store({ pollIntervalMs: 200, ...opts });
  stores.push(s);
  return s;
}

/** Every file under dir, recursively, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`],
  );
}

/** An editor that saves by writing a new file and renaming it over the old one. */
function saveByRename(abs: string, text: string): void {
  writeFileSync(`${abs}.tmp~`, text);
  renameSync(`${abs}.tmp~`, abs);
}

/** Waits until each watch has replayed and its instance scans the kind's directory. */
async function live(...ws: Watch[]): Promise<void> {
  for (const w of ws) await next(w, ['bookmark', 'resync']);
}

async function closing<T>(w: Watch, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    w.close();
  }
}

describe('YAML directory backend: files', () => {
  it('every_write_leaves_one_whole_stamped_document_per_object_and_no_temp_files', async () => {
    const s = fresh();
    const b = await s.open();
    const made = await b.create(res('IPAMHandle', 'k8s-pod-network.0a1b2c3d', { handleID: 'h' }));
    let cur = made;
    for (let i = 0; i < 20; i++) cur = await b.update({ ...cur, spec: { handleID: 'h', n: i } });
    await b.create(res('WorkloadEndpoint', 'n1-k8s-pod-eth0', { node: 'n1' }, 'kube-system'));
    await b.create(res('IPPool', 'gone', {}));
    await b.delete({ kind: 'IPPool', name: 'gone' });
    const files = walk(s.root).filter((f) => !f.startsWith('.tabby/'));
    assert.deepEqual(files.sort(), [
      'ipamhandles/k8s-pod-network.0a1b2c3d.yaml',
      'workloadendpoints/kube-system/n1-k8s-pod-eth0.yaml',
    ]);
    const text = readFileSync(join(s.root, files[0]!), 'utf8');
    const doc = parse(text) as AnyResource;
    assert.deepEqual(Object.keys(doc), ['apiVersion', 'kind', 'metadata', 'spec']);
    assert.deepEqual(doc, cur);
    assert.match(text, /\n# tabby-sha256: [0-9a-f]{32}\n$/);
  });

  it('names_that_would_leave_the_directory_are_refused', async () => {
    const b = await fresh().open();
    for (const name of ['../escape', '.hidden', '', 'a/b'])
      await assert.rejects(b.create(res('BGPPeer', name, {})), ValidationError);
    await assert.rejects(b.create(res('WorkloadEndpoint', 'w', {}, '../ippools')), ValidationError);
    assert.equal(await b.get({ kind: 'BGPPeer', name: '../escape' }), undefined);
    await b.create(res('IPPool', 'p', {}));
    assert.deepEqual((await b.list('WorkloadEndpoint', { namespace: '../ippools' })).items, []);
  });

  it('a_hand_edit_becomes_a_modified_event_in_both_instances_and_a_new_resourceVersion', async () => {
    const s = fresh();
    const b = await s.open();
    const other = await s.open();
    const v1 = await b.create(res('IPPool', 'pool', { cidr: '10.65.0.0/16', blockSize: 26 }));
    const { revision } = await b.list('IPPool');
    const w1 = b.watch('IPPool', { revision });
    const w2 = other.watch('IPPool', { revision });
    await live(w1, w2);
    await closing(w1, () =>
      closing(w2, async () => {
        const abs = join(s.root, 'ippools/pool.yaml');
        // Truncate and write in place, keeping the (now wrong) stamp and resourceVersion.
        writeFileSync(abs, readFileSync(abs, 'utf8').replace('blockSize: 26', 'blockSize: 28'));
        for (const w of [w1, w2]) {
          const [e] = await take(w, 1, 3000);
          assert.equal(e?.type, 'modified');
          assert.ok(e.type === 'modified');
          assert.deepEqual(e.object.spec, { cidr: '10.65.0.0/16', blockSize: 28 });
          assert.notEqual(e.object.metadata.resourceVersion, v1.metadata.resourceVersion);
          assert.equal(e.object.metadata.uid, v1.metadata.uid);
          assert.equal(e.object.metadata.creationTimestamp, v1.metadata.creationTimestamp);
        }
        await assert.rejects(
          b.update({ ...v1, spec: { cidr: '10.65.0.0/16', blockSize: 24 } }),
          ConflictError,
        );
        const now = await other.get({ kind: 'IPPool', name: 'pool' });
        assert.deepEqual(now?.spec, { cidr: '10.65.0.0/16', blockSize: 28 });
        // The file itself now carries the new version and a valid stamp: no second event.
        assert.match(
          readFileSync(abs, 'utf8'),
          new RegExp(`resourceVersion: "${now?.metadata.resourceVersion}"`),
        );
        const saved = await b.update({ ...now, spec: { cidr: '10.65.0.0/16', blockSize: 27 } });
        for (const w of [w1, w2]) {
          const [e] = await take(w, 1);
          assert.equal(
            e?.type === 'modified' && e.object.metadata.resourceVersion,
            saved.metadata.resourceVersion,
          );
        }
      }),
    );
  });

  it('a_hand_edit_is_adopted_before_a_compare_and_swap_even_with_no_watch_running', async () => {
    const s = fresh();
    const b = await s.open();
    const v1 = await b.create(res('IPAMBlock', 'blk', { allocations: [null, null] }));
    const abs = join(s.root, 'ipamblocks/blk.yaml');
    saveByRename(abs, readFileSync(abs, 'utf8').replace('- null\n', '- 0\n'));
    await assert.rejects(b.update({ ...v1, spec: { allocations: [1, null] } }), ConflictError);
    const now = await b.get({ kind: 'IPAMBlock', name: 'blk' });
    assert.deepEqual(now?.spec, { allocations: [0, null] });
    assert.notEqual(now?.metadata.resourceVersion, v1.metadata.resourceVersion);
    // Reading again does not adopt again.
    assert.deepEqual(await b.get({ kind: 'IPAMBlock', name: 'blk' }), now);
  });

  it('a_hand_added_file_becomes_an_added_event_with_a_stable_uid_and_keeps_its_comments', async () => {
    const s = fresh();
    const b = await s.open();
    const other = await s.open();
    const { revision } = await b.list('BGPPeer');
    const w1 = b.watch('BGPPeer', { revision });
    const w2 = other.watch('BGPPeer', { revision });
    await live(w1, w2);
    await closing(w1, () =>
      closing(w2, async () => {
        const abs = join(s.root, 'bgppeers/tor-1.yaml');
        const text =
          '# the rack switch\napiVersion: tabby.dev/v1\nkind: BGPPeer\nmetadata:\n  name: tor-1\nspec:\n  peerIP: 192.0.2.1\n  asNumber: 65001\n';
        saveByRename(abs, text);
        const uids = new Set<string | undefined>();
        for (const w of [w1, w2]) {
          const [e] = await take(w, 1, 3000);
          assert.equal(e?.type, 'added');
          assert.ok(e.type === 'added');
          assert.deepEqual(e.object.spec, { peerIP: '192.0.2.1', asNumber: 65001 });
          assert.match(
            e.object.metadata.uid ?? '',
            /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
          );
          uids.add(e.object.metadata.uid);
        }
        assert.equal(uids.size, 1);
        const after = readFileSync(abs, 'utf8');
        assert.ok(after.startsWith('# the rack switch\n'), after);
        assert.match(after, /# tabby-sha256: /);
      }),
    );
  });

  it('a_hand_deleted_file_becomes_a_deleted_event_in_both_instances', async () => {
    const s = fresh();
    const b = await s.open();
    const other = await s.open();
    const v1 = await b.create(res('Node', 'node-1', { bgp: { ipv4Address: '192.0.2.11/24' } }));
    const { revision } = await b.list('Node');
    const w1 = b.watch('Node', { revision });
    const w2 = other.watch('Node', { revision });
    await live(w1, w2);
    await closing(w1, () =>
      closing(w2, async () => {
        rmSync(join(s.root, 'nodes/node-1.yaml'));
        for (const w of [w1, w2]) {
          const [e] = await take(w, 1, 3000);
          assert.equal(e?.type, 'deleted');
          assert.ok(e.type === 'deleted');
          assert.deepEqual(e.object.spec, v1.spec);
          assert.equal(Number(e.object.metadata.resourceVersion) > Number(v1.metadata.resourceVersion), true);
        }
        assert.equal(await b.get({ kind: 'Node', name: 'node-1' }), undefined);
        assert.deepEqual((await other.list('Node')).items, []);
      }),
    );
  });

  it('bad_files_are_skipped_and_reported_while_good_ones_still_list', async () => {
    const problems: [string, string][] = [];
    const s = fresh({ onProblem: (file, message) => problems.push([file, message]) });
    const b = await s.open();
    await b.create(res('BGPFilter', 'good', { exportV4: [] }));
    const w = b.watch('BGPFilter');
    await closing(w, async () => {
      const first = await next(w, ['resync']);
      assert.deepEqual(
        first.items.map((o) => o.metadata.name),
        ['good'],
      );
      const write = (name: string, text: string): void =>
        writeFileSync(join(s.root, 'bgpfilters', name), text);
      write('broken.yaml', 'kind: BGPFilter\nmetadata: [unclosed\n');
      write(
        'wrong-kind.yaml',
        'apiVersion: tabby.dev/v1\nkind: BGPPeer\nmetadata:\n  name: wrong-kind\nspec: {}\n',
      );
      write('other-name.yaml', 'apiVersion: tabby.dev/v1\nkind: BGPFilter\nmetadata:\n  name: x\nspec: {}\n');
      write('no-name.yaml', 'apiVersion: tabby.dev/v1\nkind: BGPFilter\nmetadata: {}\n');
      const reported = new Map<string, string>();
      while (reported.size < 4) {
        const e = await next(w, ['error', 'added', 'modified', 'deleted'], 5000);
        assert.equal(e.type, 'error', `only errors, not ${e.type}`);
        assert.ok(e.type === 'error' && e.error instanceof ResourceFileError, e.type);
        reported.set(e.error.file.split('/').pop()!, e.error.problem);
      }
      assert.match(reported.get('broken.yaml')!, /not valid YAML/);
      assert.match(reported.get('wrong-kind.yaml')!, /kind BGPPeer does not belong in bgpfilters/);
      assert.match(reported.get('other-name.yaml')!, /metadata.name x does not match/);
      assert.match(reported.get('no-name.yaml')!, /no metadata.name/);
      assert.deepEqual(
        (await b.list('BGPFilter')).items.map((o) => o.metadata.name),
        ['good'],
      );
      assert.equal(await b.get({ kind: 'BGPFilter', name: 'broken' }), undefined);
      assert.deepEqual(new Set(problems.map(([f]) => f.split('/').pop())), new Set(reported.keys()));
      // Each problem is reported once, not on every rescan.
      assert.equal(problems.length, 4);
      // Fixing a file makes it an ordinary new object.
      write(
        'broken.yaml',
        'apiVersion: tabby.dev/v1\nkind: BGPFilter\nmetadata:\n  name: broken\nspec: {}\n',
      );
      const fixed = await next(w, ['added'], 3000);
      assert.equal(fixed.object.metadata.name, 'broken');
    });
    // A watch that starts later hears of the files it will not see.
    const later = b.watch('BGPFilter');
    await closing(later, async () => {
      const e = await next(later, ['error']);
      assert.ok(e.error instanceof ResourceFileError);
    });
  });

  it('a_half_written_file_is_read_again_until_it_is_whole', async () => {
    const s = fresh();
    const b = await s.open();
    const abs = join(s.root, 'ippools/slow.yaml');
    const whole =
      'apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata:\n  name: slow\nspec:\n  cidr: 10.66.0.0/16\n';
    writeFileSync(abs, whole.slice(0, 30));
    setTimeout(() => writeFileSync(abs, whole), 8);
    const got = await b.get({ kind: 'IPPool', name: 'slow' });
    assert.deepEqual(got?.spec, { cidr: '10.66.0.0/16' });
  });

  it('a_torn_journal_line_left_by_a_killed_writer_is_cut_off_and_watches_carry_on', async () => {
    const problems: string[] = [];
    const s = fresh({ onProblem: (_f, m) => problems.push(m) });
    const b = await s.open();
    const other = await s.open();
    await b.create(res('IPPool', 'p1', {}));
    const { revision } = await other.list('IPPool');
    const w = other.watch('IPPool', { revision });
    await closing(w, async () => {
      await live(w);
      // What a writer killed halfway through its append leaves: no newline.
      appendFileSync(join(s.root, '.tabby/journal'), '{"rev":999,"type":"added","path":"ippools/gh');
      await b.create(res('IPPool', 'p2', {}));
      const [e] = await take(w, 1);
      assert.ok(e?.type === 'added');
      assert.equal(e.object.metadata.name, 'p2');
      assert.equal(Number(e.revision), Number(revision) + 1);
      const lines = readFileSync(join(s.root, '.tabby/journal'), 'utf8').split('\n');
      assert.equal(lines.filter((l) => l.includes('"rev":999')).length, 0);
      assert.ok(
        problems.some((m) => m.includes('unfinished entry')),
        problems.join('; '),
      );
    });
  });

  it('a_file_renamed_into_place_but_never_journalled_becomes_a_change_with_a_higher_version', async () => {
    const s = fresh();
    const b = await s.open();
    const v1 = await b.create(res('IPAMBlock', 'blk', { n: 1 }));
    const { revision } = await b.list('IPAMBlock');
    const w = b.watch('IPAMBlock', { revision });
    await closing(w, async () => {
      await live(w);
      // A writer killed after its rename and before its journal entry: a properly stamped
      // file whose version the journal never gave out.
      const orphan = structuredClone(v1);
      orphan.spec = { n: 2 };
      orphan.metadata.resourceVersion = String(Number(revision) + 5);
      saveByRename(join(s.root, 'ipamblocks/blk.yaml'), render(orphan));
      const [e] = await take(w, 1, 3000);
      assert.equal(e?.type, 'modified');
      assert.ok(e.type === 'modified');
      assert.deepEqual(e.object.spec, { n: 2 });
      assert.ok(Number(e.object.metadata.resourceVersion) > Number(revision) + 5);
      const v3 = await b.update({ ...e.object, spec: { n: 3 } });
      assert.ok(Number(v3.metadata.resourceVersion) > Number(e.object.metadata.resourceVersion));
    });
  });

  it('a_trimmed_journal_resyncs_old_revisions_and_replays_recent_ones', async () => {
    const s = fresh({ journalMaxBytes: 8192 });
    const b = await s.open();
    const other = await s.open();
    const { revision: old } = await b.list('IPAMBlock');
    // A watch that keeps up through every rotation misses nothing.
    const live = other.watch('IPAMBlock', { revision: old });
    let cur = await b.create(res('IPAMBlock', 'blk', { n: 0, pad: 'x'.repeat(300) }));
    for (let i = 1; i <= 60; i++) cur = await b.update({ ...cur, spec: { n: i, pad: 'x'.repeat(300) } });
    assert.ok(statSync(join(s.root, '.tabby/journal')).size < 8192 + 1024, 'the journal was trimmed');
    await closing(live, async () => {
      const evs = await take(live, 61);
      assert.deepEqual(
        evs.map((e) =>
          e.type === 'added' || e.type === 'modified' ? (e.object.spec as { n: number }).n : e.type,
        ),
        Array.from({ length: 61 }, (_, i) => i),
      );
    });
    const stale = b.watch('IPAMBlock', { revision: old });
    await closing(stale, async () => {
      const [e] = await take(stale, 1);
      assert.equal(e?.type, 'resync');
      assert.ok(e.type === 'resync');
      assert.deepEqual(
        e.items.map((o) => (o.spec as { n: number }).n),
        [60],
      );
    });
    const { revision: recent } = await other.list('IPAMBlock');
    await b.update({ ...cur, spec: { n: 61 } });
    const fresh2 = other.watch('IPAMBlock', { revision: recent });
    await closing(fresh2, async () => {
      const [e] = await take(fresh2, 1);
      assert.equal(e?.type, 'modified');
    });
  });
});

export type { YamlDirBackend };
