// Datastore over the memory backend: nothing invalid is stored, cross-resource rules
// (overlapping pools, immutable pool CIDR and block size), manifests all-or-nothing, and
// invalid stored objects kept away from readers and watchers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResourceIssue, ResourceOf } from '../src/resources/index.js';
import type { WatchEvent } from '../src/store/index.js';
import { API_VERSION } from '../src/resources/index.js';
import { Datastore, MemoryBackend, ValidationError } from '../src/store/index.js';
import { take } from './conformance/suite.js';

const pool = (name: string, cidr: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, ...extra },
});

async function refused(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  assert.fail('was accepted');
}

describe('Datastore', () => {
  it('an_invalid_resource_is_refused_with_every_problem_and_nothing_is_stored', async () => {
    const b = new MemoryBackend();
    const ds = new Datastore(b);
    const e = await refused(ds.create(pool('p', '10.0.0.0/16', { blockSize: 40, ipipMode: 'Sometimes' })));
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['spec.ipipMode'],
      'schema problems come first; semantic checks wait until the fields are sound',
    );
    assert.match(e.message, /^IPPool p: spec\.ipipMode: must be one of/);
    assert.deepEqual((await b.list('IPPool')).items, []);
  });

  it('an_overlapping_pool_is_refused_naming_the_other_pool', async () => {
    const ds = new Datastore(new MemoryBackend());
    await ds.create(pool('a', '10.65.0.0/16'));
    const e = await refused(ds.create(pool('b', '10.65.128.0/17')));
    assert.deepEqual(e.issues, [
      { resource: 'IPPool b', path: 'spec.cidr', reason: '10.65.128.0/17 overlaps IPPool a (10.65.0.0/16)' },
    ]);
    await ds.create(pool('c', '10.66.0.0/16'));
    await ds.create(pool('v6', 'fd00::/48'));
  });

  it('a_pool_cidr_and_block_size_cannot_change_but_other_fields_can', async () => {
    const ds = new Datastore(new MemoryBackend());
    const a = await ds.create(pool('a', '10.65.0.0/16'));
    const e = await refused(ds.update({ ...a, spec: { ...a.spec, cidr: '10.64.0.0/15' } }));
    assert.match(e.message, /spec\.cidr: cannot be changed \(was 10\.65\.0\.0\/16\)/);
    const e2 = await refused(ds.update({ ...a, spec: { ...a.spec, blockSize: 28 } }));
    assert.match(e2.message, /spec\.blockSize: cannot be changed \(was 26\)/);
    const b = await ds.update({ ...a, spec: { ...a.spec, natOutgoing: true } });
    assert.equal(b.kind === 'IPPool' && b.spec.natOutgoing, true);
  });

  it('a_manifest_is_stored_whole_or_not_at_all', async () => {
    const b = new MemoryBackend();
    const ds = new Datastore(b);
    const bad = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: a }
spec: { cidr: 10.65.0.0/16 }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 192.0.2.1, peerSelector: all(), asNumber: 65001 }
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: b }
spec: { cidr: 10.65.64.0/18 }
`;
    const e = await refused(ds.applyManifest(bad, 'calico.yaml'));
    assert.deepEqual(
      e.issues.map((i: ResourceIssue) => `${i.resource}: ${i.path}`),
      ['BGPPeer tor: spec.peerSelector', 'IPPool b: spec.cidr'],
    );
    assert.deepEqual((await b.list('IPPool')).items, [], 'nothing stored');
    const good = bad.replace(', peerSelector: all()', '').replace('10.65.64.0/18', '10.66.0.0/16');
    const stored = await ds.applyManifest(`${good}\n---\n`, 'calico.yaml');
    assert.deepEqual(
      stored.map((r) => `${r.kind} ${r.metadata.name}`),
      ['IPPool a', 'BGPPeer tor', 'IPPool b'],
    );
    // Applying again updates in place.
    const again = await ds.applyManifest(good.replace('65001', '65002'));
    assert.equal(again[1]?.kind === 'BGPPeer' && again[1].spec.asNumber, 65002);
  });

  it('a_manifest_that_is_not_yaml_names_the_document', async () => {
    const ds = new Datastore(new MemoryBackend());
    const e = await refused(ds.applyManifest('kind: IPPool\nmetadata: {name: [\n', 'x.yaml'));
    assert.match(e.message, /^x\.yaml document 1: is not valid YAML/);
  });

  it('an_invalid_stored_object_is_skipped_by_list_reported_and_refused_by_get', async () => {
    const b = new MemoryBackend();
    const reported: ResourceIssue[] = [];
    const ds = new Datastore(b, { onInvalid: (i) => reported.push(...i) });
    await ds.create(pool('good', '10.65.0.0/16'));
    // Written behind the Datastore's back, as a hand edit would be.
    await b.create({
      apiVersion: API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'bad' },
      spec: { cidr: 'nope' },
    });
    const { items } = await ds.list('IPPool');
    assert.deepEqual(
      items.map((i) => i.metadata.name),
      ['good'],
    );
    assert.deepEqual(
      reported.map((i) => `${i.resource} ${i.path}`),
      ['IPPool bad spec.cidr'],
    );
    await refused(ds.get('IPPool', 'bad'));
  });

  it('a_watch_passes_parsed_objects_and_turns_an_invalid_change_into_an_error_event', async () => {
    const b = new MemoryBackend();
    const ds = new Datastore(b);
    const { revision } = await ds.list('IPPool');
    const w = ds.watch('IPPool', { revision });
    try {
      const a = await ds.create(pool('a', '10.65.0.0/16'));
      await b.update({ ...a, spec: { cidr: '10.65.0.0/16', blockSize: 'big' } });
      await b.delete({ kind: 'IPPool', name: 'a' });
      const it = w[Symbol.asyncIterator]();
      const evs: (WatchEvent<ResourceOf<'IPPool'>> | undefined)[] = [];
      for (let i = 0; i < 3; i++) {
        const n = await it.next();
        evs.push(n.done === true ? undefined : n.value);
      }
      assert.deepEqual(
        evs.map((e) => e?.type),
        ['added', 'error', 'deleted'],
      );
      const added = evs[0];
      assert.ok(added?.type === 'added');
      assert.equal(added.object.spec.blockSize, 26, 'defaults filled in');
    } finally {
      w.close();
    }
  });

  it('a_watch_resync_contains_only_valid_objects', async () => {
    const b = new MemoryBackend();
    const ds = new Datastore(b, { onInvalid: () => {} });
    await ds.create(pool('a', '10.65.0.0/16'));
    await b.create({ apiVersion: API_VERSION, kind: 'IPPool', metadata: { name: 'bad' }, spec: {} });
    const w = ds.watch('IPPool');
    try {
      const [e] = await take(w, 1);
      assert.ok(e?.type === 'resync');
      assert.deepEqual(
        e.items.map((i) => i.metadata.name),
        ['a'],
      );
    } finally {
      w.close();
    }
  });
});
