// Operating a running node daemon: the control socket behind `tabby status` / `tabby routes`,
// /metrics (session states match the sessions), /healthz and /readyz (Calico's readiness:
// not ready until every peer was Established; the datastore synced).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { Speaker } from 'bgp-ts/speaker';
import { Datastore, Ipam, MemoryBackend } from '@tabby/datastore';
import type { CliIo } from '@tabby/datastore/cli';
import { run } from '@tabby/datastore/cli';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { DaemonServer } from '../src/daemon/server.js';
import { routesCommand, statusCommand } from '../src/cli/status.js';
import { until } from './support/until.js';

const PORT = 17360;

async function tabby(argv: string[], env: Record<string, string>) {
  let out = '';
  let err = '';
  const io: CliIo = {
    argv,
    env,
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    readFile: () => Promise.reject(new Error('no files')),
    openBackend: () => Promise.reject(new Error('status must not open the datastore')),
    commands: { status: statusCommand, routes: routesCommand },
  };
  return { code: await run(io), out, err };
}

describe('operating tabby-node', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('answers status and routes on its socket, serves metrics and probes with Calico readiness', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-node-'));
    cleanup.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const backend = new MemoryBackend();
    const ds = new Datastore(backend);
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: PORT, bindMode: 'NodeIP' },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'p' },
      spec: { cidr: '10.66.0.0/16' },
    });
    for (const [n, ip, block] of [
      ['s1', '127.0.0.95', '10.66.1.0/26'],
      ['s2', '127.0.0.96', '10.66.2.0/26'],
    ] as const) {
      await ds.apply({
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: { name: n },
        spec: { bgp: { ipv4Address: `${ip}/8` } },
      });
      await ds.apply({
        apiVersion: 'crd.projectcalico.org/v1',
        kind: 'BlockAffinity',
        metadata: { name: `${n}-b` },
        spec: { state: 'confirmed', node: n, cidr: block, deleted: 'false' },
      });
    }
    const registry = new Registry();
    const daemon = (name: string, reg?: Registry) => {
      const d = new NodeDaemon({
        datastore: new Datastore(backend),
        nodeName: name,
        createSpeaker: (c, e) => new Speaker(c, {}, e),
        debounceMs: 10,
        ...(reg !== undefined
          ? { registry: reg, ipamUtilization: () => new Ipam({ backend }).getUtilization() }
          : {}),
      });
      cleanup.push(() => d.stop());
      d.start();
      return d;
    };
    const s1 = daemon('s1', registry);
    const socketPath = join(dir, 'node.sock');
    const server = new DaemonServer({
      daemon: s1,
      socketPath,
      http: { host: '127.0.0.1', port: 0, registry },
    });
    await server.start();
    cleanup.push(() => server.stop());
    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${server.httpPort}${path}`);
      return { code: r.status, text: await r.text() };
    };

    // s2 is not up yet: s1 is alive but not ready (start-up: 0 of 1 peers).
    await until(
      async () => (await get('/readyz')).text.includes('start-up: 0 of 1'),
      'not ready during start-up',
    );
    assert.equal((await get('/readyz')).code, 503);
    assert.equal((await get('/healthz')).code, 200);

    daemon('s2');
    await until(async () => (await get('/readyz')).code === 200, 'ready once the peer is Established');
    await until(() => s1.learned.has('10.66.2.0/26'), 's2 block learned');

    const metrics = (await get('/metrics')).text;
    assert.match(metrics, /tabby_bgp_peer_session_state\{peer="Mesh_127_0_0_96",peer_asn="64512"\} 6/);
    assert.match(metrics, /tabby_node_datastore_synced 1/);
    assert.match(metrics, /tabby_node_learned_routes 1/);
    assert.match(metrics, /tabby_node_ready 1/);
    assert.match(metrics, /tabby_node_ipam_addresses\{pool="10\.66\.0\.0\/16",state="free"\} 65536/);
    assert.match(metrics, /tabby_node_ipam_addresses\{pool="node",state="in_use"\} 0/);

    const env = { TABBY_NODE_SOCKET: socketPath };
    const st = await tabby(['status'], env);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /IPv4 BGP status\n/);
    assert.match(
      st.out,
      /127\.0\.0\.96:17360\s+node-to-node mesh\s+up\s+\d\d:\d\d:\d\d\s+Established\s+1\s+1/,
    );
    assert.match(st.out, /No IPv6 peers found\./);
    const js = await tabby(['status', '-o', 'json'], env);
    assert.equal((JSON.parse(js.out) as { peers: unknown[] }).peers.length, 1);
    const routes = await tabby(['routes', '--socket', socketPath], {});
    assert.match(routes.out, /10\.66\.2\.0\/26\s+127\.0\.0\.96/);
    assert.match(routes.out, /10\.66\.1\.0\/26\s+affine block \(aggregate\)/);

    const down = await tabby(['status', '--socket', join(dir, 'nope.sock')], {});
    assert.equal(down.code, 1);
    assert.match(down.err, /cannot reach tabby-node at .*nope\.sock.*is tabby-node running/);
  });
});
