// docs/metrics.md against a real tabby-node's /metrics, both ways: a tabby-node with the kernel
// dataplane in a network namespace of its own (tdoc-…), one BGP peer (a BIRD 2 "ToR" in a second
// namespace, over a veth pair) Established, a block claimed; every metric family it exposes must
// be on the page (a row, or a `prefix_*` row for the runtime's), and every row must be exposed.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Datastore, openBackend, parseResource, readManifest } from '@tabby/datastore';
import { kernelUnavailable, setNetnsPrefix, TestNetns } from '@tabby/netlink/testing';
import { firstColumnNames, readDoc } from './support/docs.js';
import type { Router } from './support/routers.js';
import { birdProtocolState, routerUnavailable, startRouter } from './support/routers.js';
import { until } from './support/until.js';

setNetnsPrefix('tdoc');
const NODE_BIN = fileURLToPath(new URL('../../bin/tabby-node.js', import.meta.url));

const RESOURCES = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pods }
spec: { cidr: 10.244.0.0/16, natOutgoing: true }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-1, labels: { rack: rack1 } }
spec: { bgp: { ipv4Address: 10.0.1.11/24 } }
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: node-1-10-244-3-0-26 }
spec: { state: confirmed, node: node-1, cidr: 10.244.3.0/26, deleted: 'false' }
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { asNumber: 64512, nodeToNodeMeshEnabled: false }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: rack1-tor }
spec: { peerIP: 10.0.1.1, asNumber: 65001 }
`;

const BIRD = `
log stderr all;
router id 10.0.1.1;
protocol device { }
protocol static { ipv4; route 10.9.0.0/24 blackhole; }
protocol bgp node_1 {
  local 10.0.1.1 as 65001;
  neighbor 10.0.1.11 as 64512;
  passive on;
  ipv4 { import all; export all; next hop self; };
}
`;

/** Metric family names in a Prometheus text exposition (its `# TYPE` lines). */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!).sort();
}

function scrape(ns: TestNetns): Promise<string> {
  const js =
    "fetch('http://127.0.0.1:9099/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))";
  return new Promise((resolve, reject) =>
    execFile(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, '-e', js],
      { timeout: 10_000, maxBuffer: 1 << 24 },
      (e, out, err) => (e === null ? resolve(out) : reject(new Error(err || e.message))),
    ),
  );
}

describe('docs/metrics.md', () => {
  const why = kernelUnavailable() ?? routerUnavailable('bird');
  if (why !== undefined) {
    if (process.env['CI'] === 'true')
      throw new Error(`the metrics scrape needs root and BIRD under CI: ${why}`);
    console.log(`# skipping docs-metrics: ${why}`);
  }
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it(
    'every_family_a_running_tabby_node_exposes_is_documented_and_every_documented_one_is_exposed',
    { skip: why ?? false },
    async () => {
      const ns = TestNetns.create('mn');
      cleanup.push(() => ns.destroy());
      const torNs = TestNetns.create('mt');
      cleanup.push(() => torNs.destroy());
      const dir = mkdtempSync(join(tmpdir(), 'tabby-docs-metrics-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      for (const n of [ns, torNs]) n.ip('link', 'set', 'lo', 'up');
      torNs.ip('link', 'add', 'tor0', 'type', 'veth', 'peer', 'name', 'rack0', 'netns', ns.name);
      torNs.ip('addr', 'add', '10.0.1.1/24', 'dev', 'tor0');
      ns.ip('addr', 'add', '10.0.1.11/24', 'dev', 'rack0');
      torNs.ip('link', 'set', 'tor0', 'up');
      ns.ip('link', 'set', 'rack0', 'up');
      const tor: Router = await startRouter('bird', BIRD, { address: '10.0.1.1', port: 179 }, torNs.name);
      cleanup.push(() => tor.stop());

      const backend = await openBackend({ type: 'yaml', dir: join(dir, 'datastore') });
      const ds = new Datastore(backend);
      for (const [i, d] of readManifest(RESOURCES).entries()) {
        const r = parseResource(d.toJS(), `document ${i + 1}`);
        if (!r.ok) throw new Error(JSON.stringify(r.issues));
        await ds.apply(r.resource);
      }
      await backend.close();
      let log = '';
      const node: ChildProcess = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns.name,
          process.execPath,
          NODE_BIN,
          '--node',
          'node-1',
          '--ip',
          '10.0.1.11/24',
          '--datastore-dir',
          join(dir, 'datastore'),
          '--socket',
          join(dir, 'node.sock'),
          '--nodename-file',
          join(dir, 'nodename'),
          '--mtu-file',
          join(dir, 'mtu'),
          '--dataplane',
          'kernel',
          '--http',
          '127.0.0.1:9099',
        ],
        {
          env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_DEFAULT_POOLS: 'true' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      cleanup.push(() => {
        if (node.exitCode === null) node.kill('SIGKILL');
      });
      node.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
      node.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));

      let text = '';
      await until(
        async () =>
          (await birdProtocolState(tor, 'node_1'))?.startsWith('Established') === true &&
          /^tabby_node_learned_routes 1$/m.test((text = await scrape(ns))) &&
          /^tabby_dataplane_routes_programmed \d/m.test(text),
        'node-1 Established, its learned route programmed and scraped',
        30_000,
        200,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${log}\n${text}`, { cause: e });
      });

      const exposed = families(text);
      const doc = firstColumnNames(readDoc('metrics.md')).filter((n) => /^tabby_/.test(n));
      const patterns = doc.filter((n) => n.endsWith('*')).map((n) => n.slice(0, -1));
      const names = new Set(doc.filter((n) => !n.endsWith('*')));
      assert.deepEqual(
        exposed.filter((f) => !names.has(f) && !patterns.some((p) => f.startsWith(p))),
        [],
        'exposed but not on docs/metrics.md',
      );
      assert.deepEqual(
        [...names].filter((n) => !exposed.includes(n)),
        [],
        'on docs/metrics.md but not exposed',
      );
      for (const p of patterns)
        assert.ok(
          exposed.some((f) => f.startsWith(p) && !names.has(f)),
          `${p}* matches nothing exposed`,
        );
    },
  );
});
