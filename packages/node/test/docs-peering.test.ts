// docs/peering-with-a-tor.md, run: the page's BIRD 2 and FRR blocks start real daemons, the
// page's Secret goes into an in-process Kubernetes API server and its Tabby resources into a
// datastore, and a node daemon with its bgp-ts speaker must reach Established with each, over
// TCP-MD5 with the key from the Secret. Only addresses and ports change (10.0.1.0/24 becomes
// 127.0.61.0/24, ports become high ones) plus two loopback-only lines the daemons need. A wrong
// key in the Secret must then keep the session down.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Datastore, MemoryBackend, parseResource, readManifest } from '@tabby/datastore';
import type { AnyKindResource } from '@tabby/datastore';
import { FakeApiServer, kubeConfigFor } from '@tabby/datastore/testing';
import { Speaker } from 'bgp-ts/speaker';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { KubernetesObjectsWatcher } from '../src/kubernetes/objects-watcher.js';
import { fences, readDoc } from './support/docs.js';
import type { RouterKind } from './support/routers.js';
import { birdProtocolState, frrNeighborStates, routerUnavailable, startRouter } from './support/routers.js';
import { until } from './support/until.js';

// This file uses 127.0.61.0/24 and ports 17620-17629.
const NODE_ADDR = '127.0.61.11';
const TOR_ADDR = { bird: '127.0.61.1', frr: '127.0.61.1' } as const;
const PORTS = { bird: { tor: 17620, node: 17621 }, frr: { tor: 17622, node: 17623 } } as const;
const BLOCK = '10.244.3.0/26';

const PAGE = 'peering-with-a-tor.md';
function block(name: string): string {
  const f = fences(`docs/${PAGE}`, readDoc(PAGE)).filter(
    (x) => x.before === `<!-- docs-peering: ${name} -->`,
  );
  assert.equal(f.length, 1, `one block marked docs-peering: ${name} in docs/${PAGE}`);
  return f[0]!.body;
}

/** The rack's 10.0.1.0/24 as 127.0.61.0/24: the only change to the page's addresses. */
const onLoopback = (text: string): string => text.replace(/\b10\.0\.1\.(\d+)\b/g, '127.0.61.$1');

/** `s.replace(from, to)` that must change something: the page's text is what the test runs. */
function must(s: string, from: RegExp, to: string, what: string): string {
  assert.match(s, from, `docs/${PAGE}: ${what}`);
  return s.replace(from, to);
}

function birdConfig(): string {
  let c = onLoopback(block('bird'));
  // Ports, and multihop: BIRD refuses eBGP to a neighbor on no connected subnet (loopback here).
  c = must(c, /local (\S+) as/, `local $1 port ${PORTS.bird.tor} as`, 'the template has "local ADDR as"');
  c = must(c, /(local [^;]+;)/, '$1\n  multihop;', 'the template has a local line');
  c = must(c, /neighbor (\S+) as/g, `neighbor $1 port ${PORTS.bird.node} as`, 'protocols name neighbors');
  // Logging and loopback next-hop resolution; the page leaves device/kernel to the switch.
  return `log stderr all;\nprotocol device { }\nprotocol direct { ipv4; interface "lo"; }\n${c}`;
}

function frrConfig(): string {
  let c = onLoopback(block('frr'));
  // FRR too refuses eBGP to a neighbor on no connected subnet without this.
  c = must(
    c,
    /( neighbor TABBY remote-as \d+\n)/,
    '$1 neighbor TABBY disable-connected-check\n',
    'the peer group has a remote-as',
  );
  return `frr defaults traditional\nhostname docs-tor\nlog stdout informational\n!\n${c}`;
}

/** The page's Tabby resources for node-1 on loopback, with the test's listen port. */
function tabbyResources(kind: RouterKind, withBlock: boolean): AnyKindResource[] {
  const docs = readManifest(onLoopback(block('tabby'))).map((d) => d.toJS() as Record<string, unknown>);
  for (const d of docs) {
    const spec = d['spec'] as Record<string, unknown>;
    if (d['kind'] === 'BGPConfiguration')
      Object.assign(spec, { listenPort: PORTS[kind].node, bindMode: 'NodeIP' });
    if (d['kind'] === 'BGPPeer') spec['peerIP'] = `${String(spec['peerIP'])}:${PORTS[kind].tor}`;
  }
  docs.push(
    {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'node-1', labels: { rack: 'rack1' } },
      spec: { bgp: { ipv4Address: `${NODE_ADDR}/8` } },
    },
    {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: { cidr: '10.244.0.0/16' },
    },
  );
  // FRR refuses routes whose next hop is in 127/8 (a martian, NOTIFICATION 3/8): with FRR the
  // node advertises nothing, and the test is the session.
  if (withBlock)
    docs.push({
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'BlockAffinity',
      metadata: { name: 'node-1-10-244-3-0-26' },
      spec: { state: 'confirmed', node: 'node-1', cidr: BLOCK, deleted: 'false' },
    });
  return docs.map((d, i) => {
    const r = parseResource(d, `document ${i + 1}`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.resource;
  });
}

interface Rig {
  readonly daemon: NodeDaemon;
  readonly api: FakeApiServer;
  readonly logs: string[];
  close(): Promise<void>;
}

async function nodeWithDocResources(kind: RouterKind, withBlock: boolean): Promise<Rig> {
  const api = await FakeApiServer.start();
  const secret = readManifest(block('secret'))[0]!.toJS() as Record<string, unknown>;
  api.applyDirect(secret);
  api.applyDirect({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1', labels: { rack: 'rack1' } },
  });
  const ds = new Datastore(new MemoryBackend());
  for (const r of tabbyResources(kind, withBlock)) await ds.apply(r);
  const logs: string[] = [];
  const daemon = new NodeDaemon({
    datastore: ds,
    nodeName: 'node-1',
    createSpeaker: (config, events) => new Speaker(config, {}, events),
    kubernetes: new KubernetesObjectsWatcher({
      kubeConfig: kubeConfigFor(api),
      namespace: 'kube-system',
      backoffInitialMs: 20,
      backoffMaxMs: 200,
    }),
    debounceMs: 10,
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
  });
  daemon.start();
  return {
    daemon,
    api,
    logs,
    close: async () => {
      await daemon.stop();
      await api.close();
    },
  };
}

const peerState = (rig: Rig): string | undefined => rig.daemon.status().peers[0]?.state;

for (const kind of ['bird', 'frr'] as const) {
  describe(`docs/${PAGE}: ${kind}`, () => {
    const skip = routerUnavailable(kind);
    if (skip !== undefined) console.log(`# skipping docs-peering ${kind}: ${skip}`);
    const cleanup: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of cleanup.reverse()) await c();
    });

    it(
      `the_pages_${kind}_and_tabby_blocks_establish_with_md5_from_the_secret_and_a_wrong_key_stays_down`,
      { skip: skip ?? false },
      async () => {
        const tor = await startRouter(kind, kind === 'bird' ? birdConfig() : frrConfig(), {
          address: TOR_ADDR[kind],
          port: PORTS[kind].tor,
        });
        cleanup.push(() => tor.stop());
        const rig = await nodeWithDocResources(kind, kind === 'bird');
        cleanup.push(() => rig.close());

        const routerSide = async (): Promise<string | undefined> =>
          kind === 'bird' ? birdProtocolState(tor, 'node_1') : (await frrNeighborStates(tor)).get(NODE_ADDR);
        await until(
          async () => peerState(rig) === 'established' && /Established/.test((await routerSide()) ?? ''),
          `node-1 and the ${kind} ToR Established`,
          30_000,
          100,
        ).catch((e: Error) => {
          throw new Error(
            `${e.message}\nnode: ${JSON.stringify(rig.daemon.status().peers)}\n${rig.logs.join('\n')}\n${kind} log:\n${tor.log()}`,
          );
        });
        const peer = rig.daemon.status().peers[0]!;
        assert.equal(peer.address, TOR_ADDR[kind]);
        assert.equal(peer.asNumber, 65001);
        if (kind === 'bird')
          await until(
            async () => (await tor.cli('show route protocol node_1')).includes(BLOCK),
            `BIRD has node-1's block ${BLOCK} through the page's import filter`,
            10_000,
            100,
          );

        // A wrong key: the peer restarts with it (its session settings changed) and never comes up.
        const secret = readManifest(block('secret'))[0]!.toJS() as Record<string, unknown>;
        rig.api.applyDirect({ ...secret, stringData: { 'rack1-tor': 'not-the-key' } });
        await until(
          () => peerState(rig) !== 'established',
          'the session restarted with the new key',
          10_000,
          50,
        );
        const t0 = Date.now();
        while (Date.now() - t0 < 4000) {
          assert.notEqual(peerState(rig), 'established', 'a wrong MD5 key must not establish');
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    );
  });
}
