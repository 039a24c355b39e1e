// The node daemon's core over loopback: three daemons share one datastore, each runs a real
// bgp-ts speaker on its own 127.0.0.x address. The sessions each speaker opens are exactly
// the peers computeBgpConfig gives for the current datastore; routes are exchanged; changes
// in the datastore reach the speakers without resetting sessions they do not concern.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Speaker } from 'bgp-ts/speaker';
import { Datastore, MemoryBackend } from '@tabby/datastore';
import { computeBgpConfig } from '../src/index.js';
import { speakerConfigFor } from '../src/bgp/speaker-config.js';
import { borrowedAddresses } from '../src/daemon/local-routes.js';
import type { DataplaneView } from '../src/daemon/node-daemon.js';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { until } from './support/until.js';

const PORT = 17350;

const nodeDoc = (name: string, ip: string) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'Node',
  metadata: { name },
  spec: { bgp: { ipv4Address: `${ip}/8` } },
});
const affinity = (node: string, cidr: string) => ({
  apiVersion: 'crd.projectcalico.org/v1',
  kind: 'BlockAffinity',
  metadata: { name: `${node}-${cidr.replace(/[./]/g, '-')}` },
  spec: { state: 'confirmed', node, cidr, deleted: 'false' },
});

describe('node daemon', () => {
  const daemons: NodeDaemon[] = [];
  after(async () => {
    for (const d of daemons) await d.stop();
  });

  it('opens exactly the peers computeBgpConfig gives, exchanges blocks, and follows the datastore without needless resets', async () => {
    const backend = new MemoryBackend();
    const ds = new Datastore(backend);
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: PORT, bindMode: 'NodeIP', asNumber: 64512 },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: { cidr: '10.65.0.0/16' },
    });
    const nodes = { n1: '127.0.0.91', n2: '127.0.0.92', n3: '127.0.0.93' } as const;
    for (const n of ['n1', 'n2'] as const) {
      await ds.apply(nodeDoc(n, nodes[n]));
      await ds.apply(affinity(n, `10.65.${n.slice(1)}.0/26`));
    }
    const views = new Map<string, DataplaneView>();
    const logs: { node: string; msg: string; fields?: Readonly<Record<string, unknown>> }[] = [];
    const start = (name: string) => {
      const d = new NodeDaemon({
        log: (_level, msg, fields) =>
          logs.push({ node: name, msg, ...(fields !== undefined ? { fields } : {}) }),
        datastore: new Datastore(backend),
        nodeName: name,
        createSpeaker: (config, events) => new Speaker(config, {}, events),
        dataplane: {
          update: (v) => {
            views.set(name, v);
          },
        },
        debounceMs: 20,
      });
      daemons.push(d);
      d.start();
      return d;
    };
    const [d1, d2] = [start('n1'), start('n2')];

    // The function, run on the datastore as it is now, is what each daemon applied.
    const expected = (name: string) => {
      const snap = d1.cache.snapshot();
      const cfg = computeBgpConfig(snap, name);
      return speakerConfigFor(cfg, {
        extraOriginations: borrowedAddresses(cfg, snap.workloadEndpoints).map((prefix) => ({ prefix })),
      });
    };
    const established = (d: NodeDaemon) =>
      d
        .status()
        .peers.filter((p) => p.state === 'established')
        .map((p) => p.name);
    await until(() => established(d1).length === 1 && established(d2).length === 1, 'n1 and n2 established');
    for (const [name, d] of [
      ['n1', d1],
      ['n2', d2],
    ] as const) {
      await d.settled();
      assert.deepEqual(d.applied.speaker, expected(name));
      assert.deepEqual(
        d.status().peers.map((p) => [p.name, p.address, p.port, p.type]),
        expected(name).peers.map((p) => [p.name, p.address, p.port, 'node-to-node mesh']),
      );
    }
    await until(() => d1.learned.get('10.65.2.0/26')?.[0] === nodes.n2, 'n1 learned n2 block via n2');
    await until(() => d2.learned.get('10.65.1.0/26')?.[0] === nodes.n1, 'n2 learned n1 block via n1');
    await until(
      () => views.get('n1')?.paths.get('10.65.2.0/26')?.[0] === nodes.n2,
      'the dataplane got the path',
    );

    // A third node: n1 and n2 gain a peer; their session with each other is not touched.
    const since = d1.status().peers.find((p) => p.name === 'Mesh_127_0_0_92')!.since;
    await ds.apply(nodeDoc('n3', nodes.n3));
    await ds.apply(affinity('n3', '10.65.3.0/26'));
    const d3 = start('n3');
    await until(() => [d1, d2, d3].every((d) => established(d).length === 2), 'a mesh of three');
    assert.equal(d1.status().peers.find((p) => p.name === 'Mesh_127_0_0_92')!.since, since);
    await until(
      () => d1.learned.has('10.65.3.0/26') && d2.learned.has('10.65.3.0/26'),
      'n3 block everywhere',
    );

    // n1 claims a second block: its export policy changes (soft), n2 and n3 learn the block,
    // and no session restarts.
    await ds.apply(affinity('n1', '10.65.4.0/26'));
    await until(
      () => d2.learned.has('10.65.4.0/26') && d3.learned.has('10.65.4.0/26'),
      'the new block everywhere',
    );
    assert.equal(d1.status().peers.find((p) => p.name === 'Mesh_127_0_0_92')!.since, since);
    // One structured log line per decision.
    assert.ok(
      logs.some(
        (l) =>
          l.node === 'n1' &&
          l.msg === 'block claimed: exported as an aggregate' &&
          l.fields?.['block'] === '10.65.4.0/26',
      ),
    );
    assert.ok(
      logs.some((l) => l.node === 'n1' && l.msg === 'BGP peer filters or exports changed: session kept'),
    );
    assert.ok(
      logs.some(
        (l) => l.node === 'n1' && l.msg === 'BGP peer added' && l.fields?.['peer'] === 'Mesh_127_0_0_93',
      ),
    );
    assert.ok(
      logs.some(
        (l) => l.node === 'n1' && l.msg === 'BGP session state' && l.fields?.['to'] === 'established',
      ),
    );
    for (const [name, d] of [
      ['n1', d1],
      ['n2', d2],
      ['n3', d3],
    ] as const) {
      await d.settled();
      assert.deepEqual(d.applied.speaker, expected(name));
    }

    // n3 goes away: its peers drop it, its block is withdrawn.
    await ds.delete('Node', 'n3');
    await until(() => established(d1).length === 1 && established(d2).length === 1, 'n3 gone from the mesh');
    await d3.stop();
    await until(() => !d1.learned.has('10.65.3.0/26'), "n3's block withdrawn");
    assert.deepEqual(d1.status().datastore.errors, {});
    assert.equal(d1.status().datastore.synced, true);
  });
});
