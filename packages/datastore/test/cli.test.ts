// The tabby datastore commands, driven as a function with a memory backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { CliIo } from '../src/cli/main.js';
import { run } from '../src/cli/main.js';
import { MemoryBackend } from '../src/store/index.js';

async function tabby(
  argv: string[],
  backend = new MemoryBackend(),
  files: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    argv,
    env: {},
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    readFile: (p) => (p in files ? Promise.resolve(files[p]!) : Promise.reject(new Error(`ENOENT ${p}`))),
    // close() must not lose the memory backend's state between commands in one test.
    openBackend: () =>
      Promise.resolve(
        Object.assign(Object.create(backend) as MemoryBackend, { close: () => Promise.resolve() }),
      ),
  };
  const code = await run(io);
  return { code, out, err };
}

const manifest = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: default-ipv4-ippool }
spec: { cidr: 10.65.0.0/16, ipipMode: CrossSubnet }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 192.0.2.1, asNumber: 65001 }
`;

describe('tabby CLI', () => {
  it('apply_then_get_shows_stored_resources_with_defaults', async () => {
    const b = new MemoryBackend();
    const a = await tabby(['apply', '-f', 'm.yaml'], b, { 'm.yaml': manifest });
    assert.equal(a.code, 0, a.err);
    assert.equal(a.out, 'IPPool default-ipv4-ippool applied\nBGPPeer tor applied\n');
    const g = await tabby(['get', 'ippools', '-o', 'json'], b);
    assert.equal(g.code, 0, g.err);
    const list = JSON.parse(g.out) as { items: { spec: { blockSize: number } }[] };
    assert.equal(list.items[0]?.spec.blockSize, 26);
    const y = await tabby(['get', 'BGPPeer', 'tor'], b);
    assert.equal((parse(y.out) as { spec: { asNumber: number } }).spec.asNumber, 65001);
  });

  it('validate_reports_every_problem_and_exits_1', async () => {
    const bad = manifest
      .replace('asNumber: 65001', 'asNumber: 65001, peerSelector: all()')
      .replace('CrossSubnet', 'Sometimes');
    const r = await tabby(['validate', '-f', 'm.yaml'], new MemoryBackend(), { 'm.yaml': bad });
    assert.equal(r.code, 1);
    assert.match(r.err, /IPPool default-ipv4-ippool: spec\.ipipMode: must be one of/);
    assert.match(r.err, /BGPPeer tor: spec\.peerSelector: peerIP and peerSelector cannot both be set/);
    const good = await tabby(['validate', '-f', 'm.yaml'], new MemoryBackend(), { 'm.yaml': manifest });
    assert.deepEqual([good.code, good.out], [0, '2 resources valid\n']);
  });

  it('a_refused_apply_stores_nothing', async () => {
    const b = new MemoryBackend();
    const r = await tabby(['apply', '-f', 'm.yaml'], b, {
      'm.yaml': manifest.replace('65001', '99999999999'),
    });
    assert.equal(r.code, 1);
    assert.match(r.err, /BGPPeer tor: spec\.asNumber/);
    assert.deepEqual((await b.list('IPPool')).items, []);
  });

  it('delete_and_not_found', async () => {
    const b = new MemoryBackend();
    await tabby(['apply', '-f', 'm.yaml'], b, { 'm.yaml': manifest });
    assert.equal((await tabby(['delete', 'bgppeer', 'tor'], b)).code, 0);
    const again = await tabby(['delete', 'bgppeer', 'tor'], b);
    assert.deepEqual([again.code, again.err], [1, 'tabby: BGPPeer tor not found\n']);
    const g = await tabby(['get', 'bgppeer', 'tor'], b);
    assert.equal(g.code, 1);
  });

  it('usage_errors_exit_2_and_name_the_problem', async () => {
    const r = await tabby(['get', 'pools']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown kind "pools"; kinds: BGPConfiguration/);
    assert.equal((await tabby(['frobnicate'])).code, 2);
    const c = await tabby(['get', 'ippool', '--datastore-type', 'consul']);
    assert.deepEqual(
      [c.code, c.err],
      [1, 'tabby: DATASTORE_TYPE (or --datastore-type) must be yaml, etcdv3 or kubernetes, not "consul"\n'],
    );
  });

  it('crds_prints_every_crd', async () => {
    const r = await tabby(['crds']);
    assert.equal(r.code, 0);
    assert.equal(r.out.split('kind: CustomResourceDefinition').length - 1, 10);
  });
});

describe('tabby ipam', () => {
  it('ipam_show_runs_on_the_configured_datastore_and_ignores_datastore_flags', async () => {
    const b = new MemoryBackend();
    await tabby(['apply', '-f', 'm.yaml'], b, { 'm.yaml': manifest });
    const r = await tabby(['ipam', 'show', '--datastore-type', 'yaml', '--datastore-dir=/nonexistent'], b);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /10\.65\.0\.0\/16/);
    const bad = await tabby(['ipam', 'show', '--frob'], b);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /unknown option "--frob"/);
  });
});
