// The Kubernetes Node's NetworkUnavailable condition against the in-process API server: the
// patch body is Calico's, it merges into status.conditions by type next to kubelet's, it is
// sent once (idempotent), retried with backoff on failures that may pass, not on those that
// cannot, set anyway after the ready timeout, and set by the daemon once routes are programmed.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Datastore, MemoryBackend } from '@tabby/datastore';
import { FakeApiServer, kubeConfigFor, recorded as recordedBody } from '@tabby/datastore/testing';
import { Speaker } from 'bgp-ts/speaker';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import type { NodeConditionOptions } from '../src/kubernetes/node-condition.js';
import { until } from './support/until.js';
import {
  kubernetesNodeName,
  NodeCondition,
  networkUnavailablePatch,
  STRATEGIC_MERGE_PATCH,
} from '../src/kubernetes/node-condition.js';

type Json = Record<string, unknown>;
/** A body from @tabby/datastore/testing's k8s-recorded/ (documented API objects; see its README). */
const recorded = (f: string): Json => recordedBody(f) as Json;

// This file listens on 17950-17969 (the fake API server) and 17986 (one BGP speaker).
let nextPort = 17950;
async function startServer(): Promise<FakeApiServer> {
  for (;;) {
    const port = nextPort++;
    if (port > 17969) throw new Error('no free port left in 17950-17969');
    try {
      return await FakeApiServer.start({ port });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
  }
}

const NODE = '10.240.79.157';
const NOW = new Date('2024-05-06T07:08:09.123Z');

const open: { close(): Promise<void> | void }[] = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

/** The documented Node, with kubelet's documented Ready condition and some capacity. */
async function serverWithNode(register = true): Promise<FakeApiServer> {
  const server = await startServer();
  open.push(server);
  if (register)
    server.applyDirect({
      ...recorded('node.json'),
      status: { capacity: { cpu: '2', memory: '2049008Ki' }, ...recorded('node-conditions.json') },
    });
  return server;
}

function condition(server: FakeApiServer, opts: Partial<NodeConditionOptions> = {}): NodeCondition {
  const c = new NodeCondition({
    kubeConfig: kubeConfigFor(server),
    nodeName: NODE,
    backoffInitialMs: 20,
    backoffMaxMs: 100,
    now: () => NOW,
    ...opts,
  });
  open.push({ close: () => c.stop() });
  return c;
}

const conditionsOf = (server: FakeApiServer): Json[] =>
  ((server.getDirect('v1', 'Node', NODE)?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[];
const patches = (server: FakeApiServer) => server.requests.filter((r) => r.method === 'PATCH');

describe('node NetworkUnavailable condition', () => {
  it('the_patch_is_calicos_strategic_merge_patch_field_for_field', () => {
    const fixture = recorded('calico-network-unavailable-patch.json');
    const body = networkUnavailablePatch(false, NOW);
    assert.equal(JSON.stringify(body), JSON.stringify(fixture['body']), 'same fields, same order');
    assert.equal(STRATEGIC_MERGE_PATCH, fixture['contentType']);
  });

  it('the_fake_answers_the_documented_node_status_patch_with_the_node', async () => {
    const server = await serverWithNode();
    const doc = recorded('node-status-patch-extended-resource.json');
    const req = doc['request'] as { path: string; headers: Record<string, string>; body: unknown };
    const res = await fetch(`${server.url}${req.path.replace('<your-node-name>', NODE)}`, {
      method: 'PATCH',
      headers: req.headers,
      body: JSON.stringify(req.body),
    });
    assert.equal(res.status, 200);
    const node = (await res.json()) as Json;
    assert.equal(node['kind'], 'Node');
    assert.deepEqual((node['status'] as Json)['capacity'], (doc['responseExcerpt'] as Json)['capacity']);
  });

  it('routes_programmed_sets_network_unavailable_false_next_to_kubelets_conditions', async () => {
    const server = await serverWithNode();
    const c = condition(server);
    await c.routesProgrammed();
    const [p, ...more] = patches(server);
    assert.equal(more.length, 0);
    assert.equal(p?.path, `/api/v1/nodes/${NODE}/status`);
    assert.equal(p?.contentType, 'application/strategic-merge-patch+json');
    assert.deepEqual(p?.body, networkUnavailablePatch(false, NOW));
    assert.equal(p?.status, 200);
    assert.deepEqual(conditionsOf(server), [
      ...(recorded('node-conditions.json')['conditions'] as Json[]),
      {
        type: 'NetworkUnavailable',
        status: 'False',
        lastHeartbeatTime: '2024-05-06T07:08:09Z',
        lastTransitionTime: '2024-05-06T07:08:09Z',
        reason: 'CalicoIsUp',
        message: 'Calico is running on this node',
      },
    ]);
    assert.deepEqual(c.state, { networkUnavailable: false, failures: 0 });
  });

  it('is_idempotent_one_patch_for_repeated_and_concurrent_calls', async () => {
    const server = await serverWithNode();
    const c = condition(server);
    await Promise.all([c.routesProgrammed(), c.routesProgrammed(), c.routesProgrammed()]);
    await c.routesProgrammed();
    assert.equal(patches(server).length, 1);
  });

  it('retries_with_backoff_on_5xx_and_on_a_node_not_registered_yet', async () => {
    const server = await serverWithNode(false);
    const logs: string[] = [];
    const c = condition(server, { log: (level, msg) => logs.push(`${level} ${msg}`) });
    server.failNext(2, 503);
    const done = c.routesProgrammed();
    await until(() => patches(server).length >= 4, 'two 503s and then 404s');
    assert.deepEqual(
      patches(server)
        .slice(0, 3)
        .map((r) => r.status),
      [503, 503, 404],
    );
    server.applyDirect({ ...recorded('node.json'), status: recorded('node-conditions.json') });
    await done;
    assert.equal(patches(server).at(-1)?.status, 200);
    assert.equal(conditionsOf(server).find((x) => x['type'] === 'NetworkUnavailable')?.['status'], 'False');
    assert.ok(c.state.failures >= 3);
    assert.equal(c.state.lastError, undefined);
    assert.match(logs.find((l) => l.includes('HTTP 503')) ?? '', /^warn .*retrying in \d+ ms$/);
    assert.match(logs.find((l) => l.includes('HTTP 404')) ?? '', /nodes "10\.240\.79\.157" not found/);
  });

  it('does_not_retry_an_answer_no_retry_can_change_and_tries_again_when_asked', async () => {
    const server = await serverWithNode();
    const c = condition(server);
    server.failNext(1, 422);
    await c.routesProgrammed();
    assert.equal(patches(server).length, 1);
    assert.equal(c.state.networkUnavailable, undefined);
    assert.match(c.state.lastError ?? '', /HTTP 422/);
    await c.routesProgrammed();
    assert.equal(c.state.networkUnavailable, false);
    assert.equal(patches(server).length, 2);
  });

  it('shutting_down_sets_calico_is_down_and_the_condition_stays_one_entry', async () => {
    const server = await serverWithNode();
    const c = condition(server);
    await c.routesProgrammed();
    await c.shuttingDown();
    const nu = conditionsOf(server).filter((x) => x['type'] === 'NetworkUnavailable');
    assert.deepEqual(
      nu.map((x) => [x['status'], x['reason'], x['message']]),
      [['True', 'CalicoIsDown', 'Calico is shutting down on this node']],
    );
    await c.routesProgrammed();
    assert.equal(conditionsOf(server).filter((x) => x['type'] === 'NetworkUnavailable').length, 1);
    assert.equal(c.state.networkUnavailable, false);
  });

  it('sets_the_condition_anyway_when_the_node_is_not_ready_within_the_timeout', async () => {
    const server = await serverWithNode();
    const c = condition(server, { readyTimeoutMs: 100 });
    c.start();
    await until(() => c.state.networkUnavailable === false, 'the fallback');
    assert.equal(patches(server).length, 1);
  });

  it('marks_the_kubernetes_node_named_by_calico_k8s_node_ref', () => {
    assert.equal(kubernetesNodeName({ CALICO_K8S_NODE_REF: 'k8s-name' }, 'calico-name'), 'k8s-name');
    assert.equal(kubernetesNodeName({}, 'calico-name'), 'calico-name');
  });
});

describe('node daemon and the node condition', () => {
  it('the_daemon_reports_routes_programmed_once_the_dataplane_has_them_and_it_is_ready', async () => {
    const server = await serverWithNode();
    const c = condition(server);
    const ds = new Datastore(new MemoryBackend());
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: 17986, bindMode: 'NodeIP' },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: NODE },
      spec: { bgp: { ipv4Address: '127.0.0.85/8' } },
    });
    let release: () => void = () => undefined;
    const programmed = new Promise<void>((r) => (release = r));
    let calls = 0;
    const d = new NodeDaemon({
      datastore: ds,
      nodeName: NODE,
      createSpeaker: (config, events) => new Speaker(config, {}, events),
      dataplane: { update: () => programmed },
      onRoutesProgrammed: () => {
        calls++;
        void c.routesProgrammed();
      },
      debounceMs: 10,
    });
    open.push({ close: () => d.stop() });
    d.start();
    await until(() => d.applied.count > 0, 'a configuration applied');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 0, 'not before the dataplane has the routes');
    release();
    await until(() => c.state.networkUnavailable === false, 'the condition set');
    assert.equal(
      conditionsOf(server).find((x) => x['type'] === 'NetworkUnavailable')?.['reason'],
      'CalicoIsUp',
    );
  });
});
