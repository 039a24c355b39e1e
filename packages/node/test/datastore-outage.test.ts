// A datastore outage: two node daemons on a real etcd, peering and exchanging blocks; etcd is
// stopped for a while. Nothing is lost meanwhile (the sessions stay up, the routes stay, the
// daemons report the watch errors); when etcd is back, a change made then reaches both.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Speaker } from 'bgp-ts/speaker';
import { Datastore, openBackend } from '@tabby/datastore';
import { EtcdServer, etcdSkipReason } from '@tabby/datastore/testing';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { until as untilMs } from './support/until.js';

/** Processes and real daemons start slowly on a loaded machine: 30 s unless said. */
const until = (f: () => boolean | Promise<boolean>, what: string, ms = 30_000) => untilMs(f, what, ms);

const PORT = 17380;
const OUTAGE_MS = Number(process.env['TABBY_OUTAGE_MS'] ?? 5000);

const skip = etcdSkipReason();

describe('datastore outage', { skip }, () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('keeps every session and route while etcd is down, and recovers after', async () => {
    const etcd = await EtcdServer.start();
    cleanup.push(() => etcd.stop());
    const open = async () => {
      const b = await openBackend({ type: 'etcdv3', endpoints: [etcd.endpoint] });
      cleanup.push(() => b.close());
      return new Datastore(b);
    };
    const ds = await open();
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
      spec: { cidr: '10.67.0.0/16' },
    });
    const affinity = (node: string, cidr: string) =>
      ds.apply({
        apiVersion: 'crd.projectcalico.org/v1',
        kind: 'BlockAffinity',
        metadata: { name: `${node}-${cidr.replace(/[./]/g, '-')}` },
        spec: { state: 'confirmed', node, cidr, deleted: 'false' },
      });
    const daemons: NodeDaemon[] = [];
    for (const [n, ip, block] of [
      ['o1', '127.0.0.97', '10.67.1.0/26'],
      ['o2', '127.0.0.98', '10.67.2.0/26'],
    ] as const) {
      await ds.apply({
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: { name: n },
        spec: { bgp: { ipv4Address: `${ip}/8` } },
      });
      await affinity(n, block);
      const d = new NodeDaemon({
        datastore: await open(),
        nodeName: n,
        createSpeaker: (c, e) => new Speaker(c, {}, e),
        debounceMs: 20,
      });
      cleanup.push(() => d.stop());
      d.start();
      daemons.push(d);
    }
    const [o1, o2] = daemons as [NodeDaemon, NodeDaemon];
    await until(() => o1.learned.has('10.67.2.0/26') && o2.learned.has('10.67.1.0/26'), 'blocks exchanged');
    const since = o1.status().peers[0]!.since;

    await etcd.kill();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    for (const d of daemons) {
      assert.equal(d.status().peers[0]!.state, 'established', 'the session stayed up');
      assert.equal(d.learned.size, 1, 'the route stayed');
    }
    assert.equal(o1.status().peers[0]!.since, since);

    await etcd.restart();
    await affinity('o1', '10.67.3.0/26');
    await until(() => o2.learned.has('10.67.3.0/26'), 'a change after the outage reaches the other node');
    assert.equal(o1.status().peers[0]!.since, since, 'never reset');
  });
});
