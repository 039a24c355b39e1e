// The node daemon's Kubernetes objects watcher against the in-process API server
// (@tabby/datastore/testing), fed with the documented API objects of its k8s-recorded/: the
// initial lists, add / modify / delete events, a 410 Gone and a relist, a dropped connection
// and the resume from the last resourceVersion, per-name Secret watches, a Secret whose key is
// missing, and the daemon holding its first configuration until the objects are synced.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AnyKindResource } from '@tabby/datastore';
import { Datastore, MemoryBackend, parseResource, readManifest } from '@tabby/datastore';
import { FakeApiServer, kubeConfigFor, recorded as recordedBody } from '@tabby/datastore/testing';
import type { FakeApiServerOptions } from '@tabby/datastore/testing';
import { Speaker } from 'bgp-ts/speaker';
import { computeBgpConfig } from '../src/index.js';
import { formatStatus } from '../src/cli/status.js';
import { snapshotOf } from '../src/bgpconfig/snapshot.js';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import type { ObjectsWatcherOptions } from '../src/kubernetes/objects-watcher.js';
import { KubernetesObjectsWatcher, secretsNamespace } from '../src/kubernetes/objects-watcher.js';
import { until } from './support/until.js';

type Json = Record<string, unknown>;
/** A body from @tabby/datastore/testing's k8s-recorded/ (documented API objects; see its README). */
const recorded = (f: string): Json => recordedBody(f) as Json;
const inNamespace = (o: Json, namespace: string): Json => ({
  ...o,
  metadata: { ...(o['metadata'] as Json), namespace },
});
/** A recorded object as something to create: the fields a server sets are its own (a POST with a resourceVersion fails). */
const asNew = (o: Json): Json => {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ts, ...meta } = o['metadata'] as Json;
  return { ...o, metadata: meta };
};

// This file listens on 17900-17939 (the fake API server) and 17985 (one BGP speaker).
let nextPort = 17900;
async function startServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  for (;;) {
    const port = nextPort++;
    if (port > 17939) throw new Error('no free port left in 17900-17939');
    try {
      return await FakeApiServer.start({ ...opts, port });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
  }
}

function resources(yaml: string): AnyKindResource[] {
  return readManifest(yaml).map((d, i) => {
    const r = parseResource(d.toJS(), `doc ${i + 1}`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.resource;
  });
}

const NODE = `---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n1 }
spec: { bgp: { ipv4Address: 127.0.0.81/8 } }
`;
const PEER_WITH_PASSWORD = `---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 127.0.0.82, asNumber: 65001, password: { secretKeyRef: { name: mysecret, key: password } } }
`;
const SERVICE_RANGES = `---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { serviceClusterIPs: [{ cidr: 10.0.0.0/16 }] }
`;

const FAST = {
  backoffInitialMs: 20,
  backoffMaxMs: 200,
  requestTimeoutMs: 2000,
  secretGraceMs: 300,
} as const;

const open: { close(): Promise<void> | void }[] = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

async function setup(
  yaml: string,
  objects: readonly Json[],
  opts: Partial<ObjectsWatcherOptions> = {},
): Promise<{
  server: FakeApiServer;
  w: KubernetesObjectsWatcher;
  changes: () => number;
  follow: () => void;
}> {
  const server = await startServer({ bookmarkIntervalMs: 100 });
  open.push(server);
  for (const o of objects) server.applyDirect(o);
  const w = new KubernetesObjectsWatcher({
    kubeConfig: kubeConfigFor(server),
    namespace: 'kube-system',
    ...FAST,
    ...opts,
  });
  open.push({ close: () => w.stop() });
  let n = 0;
  w.start(() => n++);
  const follow = (): void => w.follow(snapshotOf(resources(yaml)), {});
  follow();
  return { server, w, changes: () => n, follow };
}

const ALL = (): Json[] => [
  inNamespace(recorded('secret-manifest-password.json'), 'kube-system'),
  recorded('service-clusterip.json'),
  recorded('endpointslice.json'),
  recorded('node.json'),
];

describe('the API objects the watcher reads', () => {
  it('the_fake_stores_a_secret_as_the_documentation_shows_string_data_merged_into_data', async () => {
    const server = await startServer();
    open.push(server);
    const stored = server.applyDirect(recorded('secret-manifest-data-and-stringdata.json'));
    const doc = recorded('secret-as-created.json');
    assert.deepEqual(stored['data'], doc['data']);
    assert.equal(stored['stringData'], undefined);
    assert.equal((stored['metadata'] as Json)['namespace'], (doc['metadata'] as Json)['namespace']);
  });

  it('built_in_list_items_come_without_kind_and_metadata_only_lists_carry_just_metadata', async () => {
    const server = await startServer();
    open.push(server);
    for (const o of ALL()) server.applyDirect(o);
    const list = (await (await fetch(`${server.url}/api/v1/namespaces/default/services`)).json()) as Json;
    assert.equal(list['kind'], 'ServiceList');
    const item = (list['items'] as Json[])[0]!;
    assert.equal(item['kind'], undefined, 'kubernetes#3030: items of a built-in list have no kind');
    assert.equal(item['apiVersion'], undefined);
    const meta = (await (
      await fetch(`${server.url}/api/v1/nodes`, {
        headers: { Accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' },
      })
    ).json()) as Json;
    assert.equal(meta['kind'], 'PartialObjectMetadataList');
    assert.deepEqual(Object.keys((meta['items'] as Json[])[0]!).sort(), ['apiVersion', 'kind', 'metadata']);
  });
});

describe('kubernetes objects watcher', () => {
  it('lists_every_kind_once_followed_and_converts_the_recorded_objects', async () => {
    const { server, w } = await setup(NODE + PEER_WITH_PASSWORD + SERVICE_RANGES, ALL());
    await until(() => w.synced, 'synced');
    const k = w.current();
    assert.deepEqual(k.secrets, [
      { name: 'mysecret', data: { username: 'admin', password: '1f2d1e2e67df' } },
    ]);
    assert.deepEqual(k.services, [
      {
        namespace: 'default',
        name: 'my-service',
        type: 'ClusterIP',
        clusterIP: '10.0.197.123',
        clusterIPs: ['10.0.197.123'],
        externalIPs: [],
        loadBalancerIngressIPs: [],
        externalTrafficPolicy: 'Cluster',
        ipFamilies: ['IPv4'],
      },
    ]);
    assert.deepEqual(k.endpointSlices, [
      {
        namespace: 'default',
        serviceName: 'example',
        addressType: 'IPv4',
        endpoints: [{ ready: true, nodeName: 'node-1' }],
      },
    ]);
    assert.deepEqual([...k.nodeLabels], [['10.240.79.157', { name: 'my-first-k8s-node' }]]);
    assert.deepEqual(w.health, { synced: true, errors: {} });

    const lists = server.requests.filter((r) => r.method === 'GET' && r.query['watch'] === undefined);
    // The Secret is read by name in the daemon's namespace only (RBAC resourceNames can grant just it).
    const secretReads = server.requests.filter((r) => r.path.includes('/secrets'));
    assert.ok(secretReads.length > 0);
    for (const r of secretReads) {
      assert.equal(r.path, '/api/v1/namespaces/kube-system/secrets');
      assert.equal(r.query['fieldSelector'], 'metadata.name=mysecret');
    }
    // Nodes are read as metadata only.
    const nodeList = lists.find((r) => r.path === '/api/v1/nodes');
    assert.match(nodeList?.accept ?? '', /as=PartialObjectMetadataList;g=meta\.k8s\.io;v=v1/);
    const nodeWatch = server.requests.find((r) => r.path === '/api/v1/nodes' && r.query['watch'] === 'true');
    assert.match(nodeWatch?.accept ?? '', /as=PartialObjectMetadata;g=meta\.k8s\.io;v=v1/);
    assert.equal(nodeWatch?.query['allowWatchBookmarks'], 'true');
    assert.equal(
      nodeWatch?.query['resourceVersion'],
      server.revision,
      'the watch starts at the list revision',
    );
  });

  it('does_not_watch_services_until_a_service_range_is_configured', async () => {
    const { server, w } = await setup(NODE, ALL());
    await until(() => w.synced, 'synced');
    assert.deepEqual(w.current().services, []);
    assert.ok(!server.requests.some((r) => r.path.includes('services') || r.path.includes('endpointslices')));
    assert.ok(!server.requests.some((r) => r.path.includes('secrets')), 'no Secret is referenced');
  });

  it('added_modified_and_deleted_objects_reach_the_objects_and_each_calls_on_change', async () => {
    const { server, w, changes } = await setup(NODE + SERVICE_RANGES, ALL());
    await until(() => w.synced, 'synced');
    const before = changes();
    const svc = recorded('service-clusterip.json');
    server.applyDirect({ ...svc, metadata: { name: 'other', namespace: 'web' } });
    await until(() => w.current().services.length === 2, 'the added Service');
    assert.ok(changes() > before);

    const n = changes();
    const spec = { ...(svc['spec'] as Json), externalTrafficPolicy: 'Local', type: 'NodePort' };
    server.applyDirect({ ...svc, metadata: { name: 'other', namespace: 'web' }, spec });
    await until(
      () => w.current().services.find((s) => s.name === 'other')?.externalTrafficPolicy === 'Local',
      'the modified Service',
    );
    assert.ok(changes() > n);

    server.deleteDirect('v1', 'Service', 'other', 'web');
    await until(() => w.current().services.length === 1, 'the deleted Service');

    // A Node whose labels change is a change; one whose status changes is not (labels are all that is read).
    const node = recorded('node.json');
    server.applyDirect({ ...node, metadata: { ...(node['metadata'] as Json), labels: { name: 'renamed' } } });
    await until(
      () => w.current().nodeLabels.get('10.240.79.157')?.['name'] === 'renamed',
      'the relabelled Node',
    );
    const quiet = changes();
    const rev = Number(server.revision);
    await fetch(`${server.url}/api/v1/nodes/10.240.79.157/status`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
      body: JSON.stringify({ status: recorded('node-conditions.json') }),
    });
    await until(() => Number(server.revision) > rev, 'the status patch');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(changes(), quiet, 'a status-only update calls nothing');
  });

  it('relists_after_410_gone_and_keeps_a_change_made_while_disconnected', async () => {
    const { server, w } = await setup(NODE + SERVICE_RANGES, ALL());
    await until(() => w.synced, 'synced');
    const listsBefore = server.requests.filter(
      (r) => r.path === '/api/v1/services' && r.query['watch'] === undefined,
    ).length;
    server.latencyMs = 100; // hold the reconnects until the change and the compaction are in
    server.dropWatches();
    const svc = recorded('service-clusterip.json');
    server.applyDirect({ ...svc, metadata: { name: 'while-down', namespace: 'default' } });
    server.compact();
    await until(
      () => w.current().services.some((s) => s.name === 'while-down'),
      'the change made while down',
    );
    server.latencyMs = 0;
    const listsAfter = server.requests.filter(
      (r) => r.path === '/api/v1/services' && r.query['watch'] === undefined,
    ).length;
    assert.ok(listsAfter > listsBefore, 'the 410 made it list again');
    assert.ok(
      server.requests.some(
        (r) => r.path === '/api/v1/services' && r.query['watch'] === 'true' && r.status === 200,
      ),
    );
  });

  it('resumes_from_the_last_resource_version_after_a_dropped_connection_and_counts_the_errors', async () => {
    const { server, w } = await setup(NODE + SERVICE_RANGES, ALL());
    await until(() => w.synced, 'synced');
    await until(() => server.openWatches === 3, 'three watches open');
    const listsBefore = server.requests.filter((r) => r.query['watch'] === undefined).length;
    const rv = server.revision;
    server.failNext(3, 500);
    server.dropWatches();
    const svc = recorded('service-clusterip.json');
    await until(() => server.openWatches === 3, 'the watches are back');
    server.applyDirect({ ...svc, metadata: { name: 'after', namespace: 'default' } });
    await until(() => w.current().services.some((s) => s.name === 'after'), 'the change after reconnecting');
    const resumed = server.requests.filter(
      (r) => r.query['watch'] === 'true' && r.query['resourceVersion'] === rv && r.status === 200,
    );
    assert.ok(resumed.length >= 3, `every watch resumed from ${rv}: ${resumed.length}`);
    assert.equal(
      server.requests.filter((r) => r.query['watch'] === undefined).length,
      listsBefore,
      'no list: nothing was missed',
    );
    const errors = Object.values(w.health.errors).reduce((a, b) => a + b, 0);
    assert.ok(errors >= 3, `the failed reconnects are counted: ${JSON.stringify(w.health)}`);
    assert.match(w.health.lastError ?? '', /HTTP 500 InternalError/);
    assert.equal(w.health.synced, true, 'a watch that fails later keeps its state');
  });

  it('a_secret_whose_key_is_missing_leaves_the_peer_without_a_password_and_says_so', async () => {
    const yaml = NODE + PEER_WITH_PASSWORD;
    // The documented Secret as created has `username` only.
    const { w } = await setup(yaml, [inNamespace(asNew(recorded('secret-as-created.json')), 'kube-system')]);
    await until(() => w.synced, 'synced');
    assert.deepEqual(w.current().secrets, [{ name: 'mysecret', data: { username: 'administrator' } }]);
    const cfg = computeBgpConfig(snapshotOf(resources(yaml), w.current()), 'n1');
    const p = cfg.ipv4.peers.find((x) => x.name === 'Global_127_0_0_82');
    assert.ok(p);
    assert.equal(p.password, undefined);
    assert.ok(
      cfg.warnings.includes(
        'BGPPeer tor: password Secret mysecret key password not found; peering without a password',
      ),
      cfg.warnings.join('\n'),
    );
  });

  it('follows_secrets_by_name_watching_new_ones_and_dropping_those_no_longer_named', async () => {
    const yaml = NODE;
    const { server, w } = await setup(yaml, ALL());
    await until(() => w.synced, 'synced');
    assert.deepEqual(w.current().secrets, []);
    w.follow(snapshotOf(resources(NODE + PEER_WITH_PASSWORD)), {});
    await until(() => w.current().secrets.length === 1, 'the newly named Secret');
    await until(() => server.openWatches === 2, 'nodes and the Secret watched');
    w.follow(snapshotOf(resources(NODE)), {});
    await until(() => server.openWatches === 1, 'the Secret watch closed');
    assert.deepEqual(w.current().secrets, []);
  });

  it('a_named_secret_that_cannot_be_read_holds_the_first_sync_only_for_its_grace_period', async () => {
    const server = await startServer();
    open.push(server);
    for (const o of ALL()) server.applyDirect(o);
    const w = new KubernetesObjectsWatcher({
      kubeConfig: kubeConfigFor(server),
      namespace: 'kube-system',
      ...FAST,
    });
    open.push({ close: () => w.stop() });
    let n = 0;
    w.start(() => n++);
    await until(() => server.requests.some((r) => r.path === '/api/v1/nodes'), 'the node list');
    await until(() => n > 0, 'nodes synced');
    server.failNext(1000, 503);
    const t0 = Date.now();
    w.follow(snapshotOf(resources(NODE + PEER_WITH_PASSWORD)), {});
    assert.equal(w.synced, false);
    await until(() => w.synced, 'synced after the grace period', 3000);
    assert.ok(Date.now() - t0 >= FAST.secretGraceMs - 20);
    assert.deepEqual(w.current().secrets, []);
    assert.match(
      w.health.lastError ?? '',
      /secret kube-system\/mysecret: list secret kube-system\/mysecret: .*HTTP 503/,
    );
    server.failNext(0);
    await until(() => w.current().secrets.length === 1, 'the Secret once it can be read');
  });

  it('reads_secrets_from_namespace_then_pod_namespace_then_kube_system', () => {
    assert.equal(secretsNamespace({ NAMESPACE: 'calico-system', POD_NAMESPACE: 'x' }), 'calico-system');
    assert.equal(secretsNamespace({ POD_NAMESPACE: 'tabby' }), 'tabby');
    assert.equal(secretsNamespace({ NAMESPACE: '' }), 'kube-system');
  });
});

describe('node daemon with the kubernetes objects', () => {
  it('computes_nothing_until_the_objects_are_synced_then_peers_with_the_password_from_the_secret', async () => {
    const server = await startServer();
    open.push(server);
    server.applyDirect(inNamespace(recorded('secret-manifest-password.json'), 'kube-system'));
    server.latencyMs = 300; // the Secret arrives well after the datastore is synced
    const backend = new MemoryBackend();
    const ds = new Datastore(backend);
    // The peer is another Tabby node with the higher address, so this one waits for it and
    // never dials: a TCP-MD5 dial to a closed port is not refused (the unsigned RST is
    // dropped) and would outlive the test.
    const yaml = `${NODE}---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: n0 }
spec: { bgp: { ipv4Address: 127.0.0.89/8 } }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 127.0.0.89, asNumber: 64512, password: { secretKeyRef: { name: mysecret, key: password } } }
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { nodeToNodeMeshEnabled: false, listenPort: 17985, bindMode: NodeIP }
`;
    for (const r of resources(yaml)) await ds.apply(r);
    const watcher = new KubernetesObjectsWatcher({
      kubeConfig: kubeConfigFor(server),
      namespace: 'kube-system',
      ...FAST,
      secretGraceMs: 5000,
    });
    const d = new NodeDaemon({
      datastore: ds,
      nodeName: 'n1',
      createSpeaker: (config, events) => new Speaker(config, {}, events),
      kubernetes: watcher,
      debounceMs: 10,
    });
    open.push({ close: () => d.stop() });
    d.start();
    await until(() => d.cache.health.synced, 'the datastore synced');
    await d.settled();
    assert.equal(d.applied.count, 0, 'nothing applied before the Kubernetes objects are in');
    assert.match(d.ready().reason, /Kubernetes objects/);
    assert.match(formatStatus(d.status()), /^The Kubernetes objects are not synced yet\.$/m);
    await until(() => d.applied.count > 0, 'a configuration applied', 5000);
    const p = d.applied.config?.ipv4.peers.find((x) => x.name === 'Global_127_0_0_89_port_17985');
    assert.equal(p?.password, '1f2d1e2e67df');
    assert.equal(p?.passive, true);
    assert.deepEqual(d.status().kubernetes, { synced: true, errors: {} });
    assert.doesNotMatch(formatStatus(d.status()), /Kubernetes/);
  });
});
