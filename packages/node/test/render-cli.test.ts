// `tabby render`, driven through the tabby command as a function with a memory backend.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CliIo } from '@tabby/datastore/cli';
import { run } from '@tabby/datastore/cli';
import { MemoryBackend } from '@tabby/datastore';
import { renderCommand } from '../src/cli/render.js';

async function tabby(
  argv: string[],
  backend: MemoryBackend,
  files: Record<string, string> = {},
  env: Record<string, string> = {},
) {
  let out = '';
  let err = '';
  const io: CliIo = {
    argv,
    env,
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    readFile: (p) => (p in files ? Promise.resolve(files[p]!) : Promise.reject(new Error(`ENOENT ${p}`))),
    openBackend: () =>
      Promise.resolve(
        Object.assign(Object.create(backend) as MemoryBackend, { close: () => Promise.resolve() }),
      ),
    commands: { render: renderCommand },
  };
  const code = await run(io);
  return { code, out, err };
}

const manifest = `apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n1 }
spec: { bgp: { ipv4Address: 10.0.0.1/24 } }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n2 }
spec: { bgp: { ipv4Address: 10.0.0.2/24 } }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 192.0.2.1, asNumber: 65001, password: { secretKeyRef: { name: bgp, key: tor } } }
`;
const secret = `kind: Secret\napiVersion: v1\nmetadata: { name: bgp, namespace: calico-system }\nstringData: { tor: hunter2 }\n`;

describe('tabby render', () => {
  it('prints_the_peer_table_json_and_bird_with_passwords_redacted_unless_asked', async () => {
    const b = new MemoryBackend();
    assert.equal((await tabby(['apply', '-f', 'm.yaml'], b, { 'm.yaml': manifest })).code, 0);
    const files = { 'k.yaml': secret };
    const t = await tabby(['render', '--node', 'n1', '--kubernetes-objects', 'k.yaml'], b, files);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /Mesh_10_0_0_2\s+node-to-node mesh\s+10\.0\.0\.2\s+179\s+64512/);
    assert.match(
      t.out,
      /Global_192_0_2_1\s+global\s+192\.0\.2\.1\s+179\s+65001\s+64512\s+no\s+auto\s+source 10\.0\.0\.1, multihop, password/,
    );

    const j = await tabby(['render', '--node=n1', '-o', 'json', '--kubernetes-objects', 'k.yaml'], b, files);
    const cfg = JSON.parse(j.out) as { ipv4: { peers: { name: string; password?: string }[] } };
    assert.equal(cfg.ipv4.peers.find((p) => p.name === 'Global_192_0_2_1')?.password, '<redacted>');
    const shown = await tabby(
      ['render', '-o', 'json', '--show-secrets', '--kubernetes-objects', 'k.yaml'],
      b,
      files,
      { NODENAME: 'n1' },
    );
    assert.match(shown.out, /"password": "hunter2"/);

    const bird = await tabby(
      ['render', '--node', 'n1', '-o', 'bird', '--kubernetes-objects', 'k.yaml'],
      b,
      files,
    );
    assert.match(bird.out, /# ==> bird\.cfg <==\n/);
    assert.match(
      bird.out,
      /protocol bgp Global_192_0_2_1 from bgp_template \{\n(?:.*\n)*? {2}password "<redacted>";\n\}/,
    );
    assert.doesNotMatch(bird.out, /hunter2/);
  });

  it('writes_the_six_bird_files_to_a_directory', async () => {
    const b = new MemoryBackend();
    await tabby(['apply', '-f', 'm.yaml'], b, { 'm.yaml': manifest });
    const dir = await mkdtemp(join(tmpdir(), 'tabby-render-'));
    try {
      const r = await tabby(['render', '--node', 'n2', '-o', 'bird', '--out-dir', dir], b);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual((await readdir(dir)).sort(), [
        'bird.cfg',
        'bird6.cfg',
        'bird6_aggr.cfg',
        'bird6_ipam.cfg',
        'bird_aggr.cfg',
        'bird_ipam.cfg',
      ]);
      assert.match(await readFile(join(dir, 'bird6.cfg'), 'utf8'), /# IPv6 disabled on this node\./);
      assert.match(r.err, /Secret bgp key tor not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names_the_problem_in_bad_invocations', async () => {
    const b = new MemoryBackend();
    const noNode = await tabby(['render'], b);
    assert.equal(noNode.code, 2);
    assert.match(noNode.err, /render needs --node NAME \(or NODENAME\)/);
    const badOut = await tabby(['render', '--node', 'x', '-o', 'xml'], b);
    assert.equal(badOut.code, 2);
    assert.match(badOut.err, /-o must be table, json or bird, not "xml"/);
    const badKube = await tabby(['render', '--node', 'x', '--kubernetes-objects', 'k.yaml'], b, {
      'k.yaml': 'kind: Service\nmetadata: { name: s }\nspec: { type: Weird }\n',
    });
    assert.equal(badKube.code, 1);
    assert.match(badKube.err, /k\.yaml: document 1 \(Service s\): spec\.type "Weird" is not a Service type/);
  });
});
