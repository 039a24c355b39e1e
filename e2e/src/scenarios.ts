// The lab's scenarios. Each one brings the cluster to the BGP layout it needs (so any of them
// can run alone with --only), waits for convergence, and records checks; none throws on a
// failed check, so one failure still lets the rest run and report. What each checks is listed
// in e2e/README.md.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { PeerView } from '@tabby/node';
import type { BgpMode, Cluster, Pod } from './cluster.js';
import type { Recorder } from './checks.js';
import { inNetns, ipn, sleep, until } from './sh.js';
import type { Tor } from './tor.js';
import { TOR_HOLD_S } from './tor.js';
import type { LabNode, RackName } from './topology.js';
import { NODES, RACKS } from './topology.js';

export interface Lab {
  readonly cluster: Cluster;
  readonly tors: Readonly<Record<RackName, Tor>>;
  readonly say: (s: string) => void;
  /** The datastore outage's length (the 60 s unless E2E_OUTAGE_S says otherwise). */
  readonly outageMs: number;
  mode: BgpMode | undefined;
}

const ESTABLISHED = 6;
const LOOPBACKS = Object.values(RACKS).map((r) => `${r.loopback}/32`);
const torOf = (lab: Lab, n: LabNode): Tor => lab.tors[n.rack.name];

/** The peers each node must have Established in a layout (addresses). */
export function expectedPeers(mode: BgpMode, n: LabNode): string[] {
  const others = NODES.filter((m) => m !== n);
  const peers = [n.rack.gateway];
  if (mode === 'mesh') peers.push(...others.map((m) => m.ip));
  if (mode === 'reflectors') peers.push(...others.filter((m) => n.reflector || m.reflector).map((m) => m.ip));
  return peers.sort();
}

const established = (peers: readonly PeerView[]) =>
  peers
    .filter((p) => p.state.toLowerCase() === 'established')
    .map((p) => p.address)
    .sort();

/** What every node must have learned: the other nodes' blocks and the ToR loopbacks. */
async function expectedLearned(lab: Lab, n: LabNode): Promise<string[]> {
  const blocks = await lab.cluster.blocks();
  const other = [...blocks].filter(([node]) => node !== n.name).flatMap(([, b]) => b);
  return [...other, ...LOOPBACKS].sort();
}

/** Why the cluster has not converged in this layout yet, or undefined when it has. */
async function notConverged(lab: Lab, mode: BgpMode): Promise<string | undefined> {
  const blocks = [...(await lab.cluster.blocks()).values()].flat();
  for (const n of NODES) {
    const s = await lab.cluster.status(n);
    const want = expectedPeers(mode, n);
    const peers = s.peers.map((p) => p.address).sort();
    if (JSON.stringify(peers) !== JSON.stringify(want)) return `${n.name} peers ${peers.join(',')}`;
    const up = established(s.peers);
    if (up.length !== want.length) return `${n.name} established with ${up.join(',')}`;
    const learned = (await lab.cluster.routes(n)).learned.map((l) => l.prefix).sort();
    const wantLearned = await expectedLearned(lab, n);
    const missing = wantLearned.filter((p) => !learned.includes(p));
    if (missing.length > 0) return `${n.name} misses ${missing.join(',')}`;
  }
  for (const tor of Object.values(lab.tors)) {
    const routes = tor.routes();
    const missing = blocks.filter((b) => !routes.has(b));
    if (missing.length > 0) return `ToR-${tor.rack.name} misses ${missing.join(',')}`;
    for (const p of [...NODES.filter((n) => n.rack === tor.rack).map((n) => n.name), 'spine'])
      if (!tor.protocol(p).established) return `ToR-${tor.rack.name} ${p} not Established`;
  }
  return undefined;
}

/** Applies a layout and waits for it; records the convergence time. */
async function converge(lab: Lab, rec: Recorder, mode: BgpMode, ms = 60_000): Promise<boolean> {
  if (lab.mode !== mode) {
    await lab.cluster.setMode(mode);
    lab.mode = mode;
  }
  let why: string | undefined;
  try {
    const took = await until(
      async () => (why = await notConverged(lab, mode)) === undefined,
      `${mode} convergence`,
      ms,
      250,
    );
    rec.figure(`converged in ${(took / 1000).toFixed(1)} s`);
    return rec.check(`${mode}: every session Established, every block on every node and ToR`, true);
  } catch {
    return rec.check(
      `${mode}: every session Established, every block on every node and ToR`,
      false,
      why ?? '',
    );
  }
}

/** One ping, retried a few times (the first packet may meet an ARP or a route being written). */
async function reaches(from: Pod, to: string): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    if ((await inNetns(from.ns, ['ping', '-c', '1', '-W', '1', '-q', to], 5000)).status === 0) return true;
    await sleep(200);
  }
  return false;
}

/** Every pod to every other pod and to both ToR loopbacks; sources in parallel. */
async function pingMatrix(lab: Lab, rec: Recorder, pods: readonly Pod[] = lab.cluster.pods): Promise<void> {
  const targets = [
    ...lab.cluster.pods.map((p) => ({ name: p.name, ip: p.ip })),
    ...LOOPBACKS.map((l) => ({ name: `tor ${l}`, ip: l.split('/')[0]! })),
  ];
  const failed: string[] = [];
  let tried = 0;
  await Promise.all(
    pods.map(async (from) => {
      for (const to of targets) {
        if (to.ip === from.ip) continue;
        tried++;
        if (!(await reaches(from, to.ip))) failed.push(`${from.name}->${to.name}`);
      }
    }),
  );
  rec.check(
    `ping matrix: ${pods.length} pods to every pod and both ToR loopbacks (${tried} pairs)`,
    failed.length === 0,
    failed.length === 0 ? '' : `unreachable: ${failed.join(' ')}`,
  );
}

/**
 * Each node's metrics against what is true: session states against the daemon's status and
 * the ToR's `show protocols`, prefix counts against the routes the ToR sent and accepted,
 * learned routes against `tabby routes`, readiness.
 */
export async function checkMetrics(
  lab: Lab,
  rec: Recorder,
  nodes: readonly LabNode[] = NODES,
): Promise<void> {
  const wrong: string[] = [];
  for (const n of nodes) {
    try {
      const m = await lab.cluster.metrics(n);
      const s = await lab.cluster.status(n);
      const tor = torOf(lab, n);
      for (const p of s.peers) {
        const peer = { peer: p.name };
        const state = m.value('tabby_bgp_peer_session_state', peer);
        const isUp = p.state.toLowerCase() === 'established';
        if ((state === ESTABLISHED) !== isUp)
          wrong.push(`${n.name} ${p.address}: state metric ${state}, status ${p.state}`);
        if (p.address !== tor.rack.gateway) continue;
        const bird = tor.protocol(n.name);
        if (isUp !== bird.established)
          wrong.push(`${n.name}: tabby says ${p.state}, BIRD says ${bird.state}`);
        const received = m.value('tabby_bgp_peer_prefixes', { ...peer, kind: 'received' });
        const advertised = m.value('tabby_bgp_peer_prefixes', { ...peer, kind: 'advertised' });
        if (received !== bird.exported)
          wrong.push(`${n.name}: ${received} received from the ToR, BIRD exported ${bird.exported}`);
        if (advertised !== bird.imported)
          wrong.push(`${n.name}: ${advertised} advertised to the ToR, BIRD imported ${bird.imported}`);
      }
      const learned = (await lab.cluster.routes(n)).learned.length;
      const metric = m.value('tabby_node_learned_routes');
      if (metric !== learned)
        wrong.push(`${n.name}: tabby_node_learned_routes ${metric}, tabby routes ${learned}`);
      if (m.value('tabby_node_ready') !== 1 || !(await lab.cluster.ready(n)))
        wrong.push(`${n.name}: not ready`);
      if (m.value('tabby_node_datastore_synced') !== 1) wrong.push(`${n.name}: datastore not synced`);
    } catch (e) {
      wrong.push(`${n.name}: ${(e as Error).message}`);
    }
  }
  rec.check(
    'metrics match reality (session states, prefix counts vs BIRD, learned routes, readiness)',
    wrong.length === 0,
    wrong.join('; '),
  );
}

/**
 * Each ToR has from each of its nodes exactly that node's own blocks (the BGPFilter on the
 * ToR peerings: nothing learned from the mesh or a reflector is passed on to the ToR).
 */
async function torsHaveOwnBlocksOnly(lab: Lab, rec: Recorder): Promise<void> {
  const blocks = await lab.cluster.blocks();
  const wrong: string[] = [];
  for (const n of NODES) {
    const got = [...torOf(lab, n).routes(n.name)].sort();
    const want = [...(blocks.get(n.name) ?? [])].sort();
    if (JSON.stringify(got) !== JSON.stringify(want))
      wrong.push(`from ${n.name}: ${got.join(',')} (own: ${want.join(',')})`);
  }
  rec.check(
    "each ToR has from each node exactly the node's own blocks",
    wrong.length === 0,
    wrong.join('; '),
  );
}

/** A layout scenario: converge, what the ToRs took from the nodes, ping matrix, metrics. */
export function layout(mode: BgpMode): (lab: Lab, rec: Recorder) => Promise<void> {
  return async (lab, rec) => {
    if (!(await converge(lab, rec, mode))) return;
    await torsHaveOwnBlocksOnly(lab, rec);
    await pingMatrix(lab, rec);
    await checkMetrics(lab, rec);
  };
}

/**
 * A CrossSubnet pool, with the mesh: a block of the pool on a node of the same rack is
 * routed straight over eth0; one on the other rack through the tunnel device, onlink (VXLAN:
 * via the node's VTEP on vxlan.calico; IPIP: via the node's address on tunl0); the pool's
 * pods reach each other.
 */
export function crossSubnet(pool: 'vxlan' | 'ipip'): (lab: Lab, rec: Recorder) => Promise<void> {
  const dev = pool === 'vxlan' ? 'vxlan.calico' : 'tunl0';
  const prefix = pool === 'vxlan' ? '10.66.' : '10.68.';
  return async (lab, rec) => {
    if (!(await converge(lab, rec, 'mesh'))) return;
    const blocks = await lab.cluster.blocks();
    const wrong: string[] = [];
    let plain = 0;
    let encapsulated = 0;
    for (const n of NODES) {
      const kernel = ipn(n.ns, 'route', 'show', 'proto', '84').split('\n');
      for (const m of NODES.filter((x) => x !== n))
        for (const b of (blocks.get(m.name) ?? []).filter((x) => x.startsWith(prefix))) {
          const line = kernel.find((l) => l.startsWith(`${b} `)) ?? '(none)';
          const same = m.rack === n.rack;
          const ok = same
            ? line.includes(`via ${m.ip} dev eth0`)
            : line.includes(` dev ${dev} `) &&
              line.includes('onlink') &&
              (pool === 'vxlan' || line.includes(`via ${m.ip} `));
          if (!ok) wrong.push(`${n.name}: ${b} (${same ? 'same rack' : 'other rack'}): ${line}`);
          else if (same) plain++;
          else encapsulated++;
        }
    }
    rec.check(
      `${pool} pool routes: same rack over eth0, other rack via ${dev} onlink`,
      wrong.length === 0 && plain === 4 && encapsulated === 8,
      wrong.length > 0
        ? wrong.join('; ')
        : plain === 4 && encapsulated === 8
          ? ''
          : `${plain} plain and ${encapsulated} tunnel routes, want 4 and 8`,
    );
    rec.figure(`${plain} same-rack routes plain, ${encapsulated} cross-rack routes through ${dev}`);
    await pingMatrix(
      lab,
      rec,
      lab.cluster.pods.filter((p) => p.pool === pool),
    );
  };
}

/** A pinger in a pod: ping every 20 ms until stopped; resolves with (sent, received). */
function pinger(
  from: Pod,
  to: string,
): { stop: () => Promise<{ sent: number; received: number; out: string }> } {
  const p: ChildProcess = spawn('ip', ['netns', 'exec', from.ns, 'ping', '-i', '0.02', '-W', '1', to], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-2000)));
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    stop: async () => {
      p.kill('SIGINT'); // ping prints its statistics on SIGINT
      await done;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? -1), out };
    },
  };
}

const podOn = (lab: Lab, n: LabNode, pool = 'plain'): Pod => {
  const p = lab.cluster.pods.find((x) => x.node === n && x.pool === pool);
  if (p === undefined) throw new Error(`no ${pool} pod on ${n.name}`);
  return p;
};

/**
 * tabby-node on a1 stopped (SIGTERM) and started again while pods on a2 (same rack) and b1
 * (other rack) ping a pod on a1 every 20 ms, with the ToRs only (their graceful restart keeps
 * a1's routes): not one packet lost, and ToR-A never drops a1's blocks.
 */
export async function restartUnderPing(lab: Lab, rec: Recorder): Promise<void> {
  if (!(await converge(lab, rec, 'tors-only'))) return;
  const a1 = NODES[0]!;
  const target = podOn(lab, a1).ip;
  const own = (await lab.cluster.blocks()).get(a1.name) ?? [];
  const pingers = [podOn(lab, NODES[1]!), podOn(lab, NODES[2]!)].map((p) => ({
    from: p,
    ping: pinger(p, target),
  }));
  let dropped = '';
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const r = lab.tors.a.routes();
      for (const b of own) if (!r.has(b)) dropped ||= `${b} gone from ToR-A`;
      await sleep(200);
    }
  })();
  await sleep(1000);
  const t0 = performance.now();
  const code = await lab.cluster.stop(a1, 'SIGTERM');
  rec.equal('tabby-node exits 0 on SIGTERM', code, '0');
  await sleep(1000);
  lab.cluster.start(a1);
  let back = false;
  try {
    await until(
      async () => established((await lab.cluster.status(a1)).peers).includes(a1.rack.gateway),
      'a1 Established with its ToR again',
      60_000,
    );
    back = true;
    rec.figure(`stopped and Established again in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    rec.check('a1 Established with its ToR again', false, (e as Error).message);
  }
  lab.cluster.markUp(a1);
  await sleep(2000);
  watching = false;
  await watch;
  for (const { from, ping } of pingers) {
    const r = await ping.stop();
    rec.check(
      `no packet lost from ${from.name} to a1's pod across the restart`,
      back && r.sent > 100 && r.received === r.sent,
      `${r.received}/${r.sent} received`,
    );
    rec.figure(`${from.name}: ${r.received}/${r.sent} pings`);
  }
  rec.check("ToR-A kept a1's blocks throughout (graceful restart)", dropped === '', dropped);
  await checkMetrics(lab, rec, [a1]);
}

/**
 * ToR-A's session with a2 disabled and enabled again (birdc): Established again, a2's
 * blocks back on the ToR and the ToR's routes back on a2, one more Established transition in
 * a2's metrics.
 */
export async function torFlap(lab: Lab, rec: Recorder): Promise<void> {
  if (!(await converge(lab, rec, 'tors-only'))) return;
  const a2 = NODES[1]!;
  const torPeer = (await lab.cluster.status(a2)).peers.find((p) => p.address === a2.rack.gateway);
  const peer = { peer: torPeer?.name ?? '?' };
  const before = (await lab.cluster.metrics(a2)).value('tabby_bgp_peer_established_transitions_total', peer);
  lab.tors.a.birdc(`disable ${a2.name}`);
  const own = (await lab.cluster.blocks()).get(a2.name) ?? [];
  try {
    await until(
      async () =>
        !established((await lab.cluster.status(a2)).peers).includes(a2.rack.gateway) &&
        own.every((b) => !lab.tors.a.routes().has(b)),
      'the session down on both sides',
      15_000,
    );
    rec.check('disable: session down on a2 and its blocks gone from ToR-A', true);
    // The metrics say so too, while it is down.
    const m = await lab.cluster.metrics(a2);
    const state = m.value('tabby_bgp_peer_session_state', peer);
    const bird = lab.tors.a.protocol(a2.name);
    rec.check(
      "while disabled: a2's session-state metric is not Established, nor is BIRD's protocol",
      state !== undefined && state !== ESTABLISHED && !bird.established,
      `metric ${state}, BIRD ${bird.state}`,
    );
  } catch (e) {
    rec.check('disable: session down on a2 and its blocks gone from ToR-A', false, (e as Error).message);
  }
  const t0 = performance.now();
  lab.tors.a.birdc(`enable ${a2.name}`);
  if (!(await converge(lab, rec, 'tors-only'))) return;
  rec.figure(`recovered ${((performance.now() - t0) / 1000).toFixed(1)} s after enable`);
  const after = (await lab.cluster.metrics(a2)).value('tabby_bgp_peer_established_transitions_total', peer);
  rec.equal(
    'one more Established transition in the metrics',
    after !== undefined && before !== undefined ? after - before : `${before} then ${after}`,
    1,
  );
  await pingMatrix(
    lab,
    rec,
    lab.cluster.pods.filter((p) => p.node === a2),
  );
  await checkMetrics(lab, rec, [a2]);
}

/**
 * etcd stopped for the outage: no session reset, no route lost on any node or ToR meanwhile,
 * the daemons count watch errors; after it is back, a change (a new pool and a pod from it on
 * a1: a new block) reaches the ToRs and the other nodes, and the new pod is reachable.
 */
export async function datastoreOutage(lab: Lab, rec: Recorder): Promise<void> {
  if (!(await converge(lab, rec, 'tors-only'))) return;
  const snapshot = async () => {
    const out = new Map<string, { learned: string[]; since: number[] }>();
    for (const n of NODES) {
      const s = await lab.cluster.status(n);
      out.set(n.name, {
        learned: (await lab.cluster.routes(n)).learned.map((l) => l.prefix).sort(),
        since: s.peers.map((p) => p.since),
      });
    }
    return out;
  };
  const torRoutes = () => Object.values(lab.tors).map((t) => [...t.routes()].sort().join(','));
  const watchErrors = async () =>
    Promise.all(
      NODES.map(async (n) =>
        (await lab.cluster.metrics(n))
          .find('tabby_node_datastore_watch_errors')
          .reduce((a, s) => a + s.value, 0),
      ),
    );
  const before = await snapshot();
  const torBefore = torRoutes();
  const errorsBefore = await watchErrors();
  await lab.cluster.etcd.kill();
  try {
    const t0 = performance.now();
    const changes: string[] = [];
    let probes = 0;
    while (performance.now() - t0 < lab.outageMs) {
      await sleep(Math.min(5000, Math.max(0, lab.outageMs - (performance.now() - t0))));
      probes++;
      const now = await snapshot();
      for (const [name, b] of before) {
        const a = now.get(name)!;
        if (JSON.stringify(a.learned) !== JSON.stringify(b.learned)) changes.push(`${name} learned changed`);
        if (JSON.stringify(a.since) !== JSON.stringify(b.since))
          changes.push(`${name} a session changed state`);
      }
      if (JSON.stringify(torRoutes()) !== JSON.stringify(torBefore)) changes.push('a ToR table changed');
    }
    rec.check(
      `etcd down ${(lab.outageMs / 1000).toFixed(0)} s: no session reset, no route lost (${probes} probes of every node and ToR)`,
      changes.length === 0,
      [...new Set(changes)].join('; '),
    );
    const errorsDuring = await watchErrors();
    rec.check(
      'every daemon reports the outage (tabby_node_datastore_watch_errors rose)',
      errorsDuring.every((e, i) => e > errorsBefore[i]!),
      `before ${errorsBefore.join(',')}, during ${errorsDuring.join(',')}`,
    );
  } finally {
    await lab.cluster.etcd.restart();
  }
  const t1 = performance.now();
  await lab.cluster.applyPool('late');
  const a1 = NODES[0]!;
  let pod: Pod | undefined;
  try {
    // Through a1's daemon (the CNI plugin's node_socket): its datastore client must be back.
    pod = await until(
      () => {
        lab.cluster.addPod(a1, 'late-a1', 'late');
        return true;
      },
      'CNI ADD of a pod from the new pool on a1',
      30_000,
      1000,
    ).then(() => lab.cluster.pods.find((p) => p.name === 'late-a1'));
  } catch (e) {
    rec.check('after the outage: CNI ADD of a pod in a new pool on a1', false, (e as Error).message);
    return;
  }
  const block = ((await lab.cluster.blocks()).get(a1.name) ?? []).find((b) => b.startsWith('10.67.'));
  if (!rec.check('after the outage: a1 claimed a block of the new pool', block !== undefined)) return;
  try {
    await until(
      async () =>
        lab.tors.b.routes().has(block!) &&
        (await lab.cluster.routes(NODES[3]!)).learned.some((l) => l.prefix === block),
      `${block} on ToR-B and b2`,
      30_000,
    );
    rec.check(`after the outage: the new block ${block} reaches ToR-B and b2`, true);
    rec.figure(`etcd back to the new block on b2: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  } catch (e) {
    rec.check(`after the outage: the new block ${block} reaches ToR-B and b2`, false, (e as Error).message);
  }
  rec.check(
    'after the outage: a pod on b2 reaches the new pod',
    pod !== undefined && (await reaches(podOn(lab, NODES[3]!), pod.ip)),
  );
  await checkMetrics(lab, rec);
}

/**
 * a1 killed (its link down first, so no FIN or NOTIFICATION leaves, then SIGKILL): ToR-A
 * drops its blocks within the hold time, and so do ToR-B and the other nodes; then a1 comes
 * back (link up, tabby-node started) and the cluster converges again.
 */
export async function nodeKilled(lab: Lab, rec: Recorder): Promise<void> {
  if (!(await converge(lab, rec, 'tors-only'))) return;
  const a1 = NODES[0]!;
  const own = (await lab.cluster.blocks()).get(a1.name) ?? [];
  ipn(a1.ns, 'link', 'set', 'eth0', 'down');
  await lab.cluster.stop(a1, 'SIGKILL');
  const t0 = performance.now();
  let tookMs = Infinity;
  try {
    tookMs = await until(
      () => own.every((b) => !lab.tors.a.routes().has(b)),
      "a1's blocks withdrawn on ToR-A",
      30_000,
      50,
    );
  } catch {
    // recorded below
  }
  rec.check(
    `a1's blocks withdrawn on ToR-A within the hold time (${TOR_HOLD_S} s, + 1 s for BIRD's timer granularity)`,
    tookMs <= (TOR_HOLD_S + 1) * 1000,
    `${(tookMs / 1000).toFixed(2)} s`,
  );
  rec.figure(`ToR-A withdrew a1's ${own.length} blocks ${(tookMs / 1000).toFixed(2)} s after the kill`);
  try {
    await until(
      async () => {
        if (own.some((b) => lab.tors.b.routes().has(b))) return false;
        for (const n of NODES.slice(1))
          if ((await lab.cluster.routes(n)).learned.some((l) => own.includes(l.prefix))) return false;
        return true;
      },
      "a1's blocks gone from ToR-B and every other node",
      10_000,
    );
    rec.figure(`gone everywhere ${((performance.now() - t0) / 1000).toFixed(2)} s after the kill`);
    rec.check("a1's blocks gone from ToR-B and every other node", true);
  } catch (e) {
    rec.check("a1's blocks gone from ToR-B and every other node", false, (e as Error).message);
  }
  // Back: the link (and the default route the kernel dropped with it), then the daemon.
  ipn(a1.ns, 'link', 'set', 'eth0', 'up');
  ipn(a1.ns, 'route', 'replace', 'default', 'via', a1.rack.gateway, 'dev', 'eth0');
  lab.cluster.start(a1);
  await lab.cluster.waitStarted([a1]);
  lab.cluster.markUp(a1);
  if (!(await converge(lab, rec, 'tors-only'))) return;
  await pingMatrix(
    lab,
    rec,
    lab.cluster.pods.filter((p) => p.node === a1),
  );
  await checkMetrics(lab, rec);
}
