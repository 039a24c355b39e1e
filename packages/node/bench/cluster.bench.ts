// npm run bench:cluster: how long from a block claimed on one node (its BlockAffinity written
// to the datastore) until every other node has the route in its kernel, for clusters of 3, 50
// and 200 simulated nodes, through the full mesh and through two route reflectors; and the
// memory each node daemon adds (JavaScript heap and buffers after GC, shared runtime excluded).
//
// Every node is a real NodeDaemon with a real bgp-ts speaker on its own 127.1.x.y address.
// As root, every node also has its own network namespace and a real FelixDataplane
// programming it, and the time is taken when a netlink monitor in that namespace sees the
// route (RTM_NEWROUTE): the kernel has it. Without root (or with --no-kernel) the time is the
// daemon's hand-off to its dataplane. The daemons run in one or more worker processes (a
// 200-node full mesh is 39,800 sockets, over one process's open-file limit), each holding an
// in-memory copy of the datastore; the coordinator writes each BlockAffinity to every copy at
// once over IPC, so the datastore's own latency is not in the figures but the IPC hop is.
// Times across processes are on one clock: performance.timeOrigin + performance.now().
//
//   npm run bench:cluster [-- --trials N] [-- --sizes 3,50,200] [-- --topologies mesh,reflectors]
//                         [-- --procs N] [-- --no-kernel]
import type { ChildProcess } from 'node:child_process';
import { fork, spawnSync } from 'node:child_process';
import { Speaker } from 'bgp-ts/speaker';
import { Datastore, MemoryBackend } from '@tabby/datastore';
import { RtnlMonitor } from '@tabby/netlink';
import type { Dataplane, DataplaneView } from '../src/daemon/node-daemon.js';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { FelixDataplane } from '../src/dataplane/felix.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const TRIALS = Number(arg('trials') ?? 20);
const SIZES = (arg('sizes') ?? '3,50,200').split(',').map(Number);
const TOPOLOGIES = (arg('topologies') ?? 'mesh,reflectors').split(',') as Topology[];
const PROCS = arg('procs');
const PORT = 17390;
/** Sockets per worker process: well under the open-file limit (20,000 here), with room for the rest. */
const SOCKETS_PER_PROCESS = 12_000;

type Topology = 'mesh' | 'reflectors';
const ipOf = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
/** A /26 of its own for every trial. */
const blockOf = (t: number): string => `10.${200 + (t >> 10)}.${(t >> 2) & 255}.${(t & 3) * 64}/26`;
/** One clock for every process. */
const now = (): number => performance.timeOrigin + performance.now();
const nodeNames = (topology: Topology, n: number): string[] =>
  Array.from({ length: topology === 'reflectors' ? n + 2 : n }, (_, i) =>
    i >= n ? `rr${i - n + 1}` : `node${i}`,
  );
const sessionsOf = (topology: Topology, n: number): number =>
  topology === 'mesh' ? (n * (n - 1)) / 2 : 2 * n + 1;

async function until(f: () => boolean, what: string, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

interface Result {
  readonly topology: string;
  readonly nodes: number;
  readonly sessions: number;
  readonly processes: number;
  readonly kernel: boolean;
  readonly convergeS: number;
  readonly p50: number;
  readonly p99: number;
  readonly perNodeP50: number;
  readonly mbPerDaemon: number;
}

/** What a worker runs: the daemons of nodes [from, to) of the cluster. */
interface WorkerSpec {
  readonly topology: Topology;
  readonly n: number;
  readonly from: number;
  readonly to: number;
  /** Namespace name prefix (node i's namespace is prefix + i); absent: no kernel. */
  readonly netnsPrefix?: string;
}
type ToWorker =
  { readonly t: 'claim'; readonly owner: string; readonly block: string } | { readonly t: 'stop' };
type FromWorker =
  | { readonly t: 'up'; readonly bytesPerDaemon: number }
  | { readonly t: 'seen'; readonly block: string; readonly at: readonly number[] }
  | { readonly t: 'failed'; readonly message: string };

/** The cluster's resources, the same in every worker's copy of the datastore. */
async function clusterDatastore(topology: Topology, n: number): Promise<MemoryBackend> {
  const backend = new MemoryBackend();
  const ds = new Datastore(backend);
  await ds.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { listenPort: PORT, bindMode: 'NodeIP', nodeToNodeMeshEnabled: topology === 'mesh' },
  });
  await ds.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p' },
    spec: { cidr: '10.128.0.0/9', blockSize: 26, natOutgoing: false },
  });
  const names = nodeNames(topology, n);
  for (const [i, name] of names.entries()) {
    const rr = name.startsWith('rr');
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name, ...(rr ? { labels: { 'route-reflector': 'true' } } : {}) },
      spec: { bgp: { ipv4Address: `${ipOf(i)}/8`, ...(rr ? { routeReflectorClusterID: '224.0.0.1' } : {}) } },
    });
  }
  if (topology === 'reflectors')
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'to-reflectors' },
      spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
    });
  return backend;
}

async function worker(spec: WorkerSpec): Promise<void> {
  const send = (m: FromWorker): void => void process.send!(m);
  const heap = (): number => {
    global.gc?.();
    const m = process.memoryUsage();
    return m.heapUsed + m.external; // RSS never shrinks back; the heap does
  };
  const heap0 = heap();
  const backend = await clusterDatastore(spec.topology, spec.n);
  const ds = new Datastore(backend);
  const all = nodeNames(spec.topology, spec.n);
  const names = all.slice(spec.from, spec.to);
  // Per node: when it first had each prefix (in its kernel, or handed to its dataplane).
  const seen = new Map<string, Map<string, number>>();
  const daemons: NodeDaemon[] = [];
  const monitors: RtnlMonitor[] = [];
  for (const [k, name] of names.entries()) {
    const mine = new Map<string, number>();
    seen.set(name, mine);
    let dataplane: Dataplane;
    if (spec.netnsPrefix !== undefined) {
      const netns = `/var/run/netns/${spec.netnsPrefix}${spec.from + k}`;
      monitors.push(
        RtnlMonitor.open({
          netns,
          groups: ['ipv4-route'],
          onMessage: (m) => {
            if (m.kind === 'route' && m.op === 'new' && m.route.protocol === 84) {
              const p = `${m.route.dst}/${m.route.dstLen}`;
              if (!mine.has(p)) mine.set(p, now());
            }
          },
          onOverrun: (e) => send({ t: 'failed', message: `${name}: route monitor overrun: ${e.message}` }),
        }),
      );
      dataplane = new FelixDataplane({ netns, mtuFile: null, nat: false });
    } else
      dataplane = {
        update: (v: DataplaneView) => {
          const t = now();
          for (const p of v.paths.keys()) if (!mine.has(p)) mine.set(p, t);
        },
      };
    const d = new NodeDaemon({
      datastore: new Datastore(backend),
      nodeName: name,
      createSpeaker: (c, e) => new Speaker(c, {}, e),
      dataplane,
    });
    daemons.push(d);
    d.start();
  }
  const expected = (name: string): number =>
    spec.topology === 'mesh' ? spec.n - 1 : name.startsWith('rr') ? spec.n + 1 : 2;
  await until(
    () =>
      daemons.every(
        (d, i) => d.status().peers.filter((p) => p.state === 'established').length === expected(names[i]!),
      ),
    `${spec.topology} of ${spec.n}: every session of nodes ${spec.from}-${spec.to - 1} Established`,
    600_000,
  );
  send({ t: 'up', bytesPerDaemon: (heap() - heap0) / names.length });

  let claims = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    if (m.t === 'stop') {
      claims = claims.then(async () => {
        for (const d of daemons) await d.stop();
        for (const mon of monitors) mon.close();
        process.exit(0); // the dataplanes keep their resync timers; nothing is left to do
      });
      return;
    }
    claims = claims.then(async () => {
      await ds.apply({
        apiVersion: 'crd.projectcalico.org/v1',
        kind: 'BlockAffinity',
        metadata: { name: `${m.owner}-${m.block.replace(/[./]/g, '-')}` },
        spec: { state: 'confirmed', node: m.owner, cidr: m.block, deleted: 'false' },
      });
      const others = names.filter((x) => x !== m.owner);
      await until(
        () => others.every((o) => seen.get(o)!.has(m.block)),
        `block ${m.block} everywhere`,
        60_000,
      );
      send({ t: 'seen', block: m.block, at: others.map((o) => seen.get(o)!.get(m.block)!) });
    });
    claims = claims.catch((e: unknown) => send({ t: 'failed', message: (e as Error).message }));
  });
}

/** Node i's namespace: a veth pair whose eth0 holds 127.1.255.254/16, so every node's address is a valid next hop. */
function makeNamespaces(prefix: string, count: number): void {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const ns = `${prefix}${i}`;
    lines.push(
      `ip netns add ${ns}`,
      `ip link add eth0 netns ${ns} type veth peer name eth1 netns ${ns}`,
      `ip -n ${ns} link set eth0 up`,
      `ip -n ${ns} link set eth1 up`,
      `ip -n ${ns} addr add 127.1.255.254/16 dev eth0`,
    );
  }
  const r = spawnSync('sh', ['-e', '-c', lines.join('\n')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the namespaces: ${r.stderr}`);
}

function deleteNamespaces(prefix: string): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(prefix) === true) spawnSync('ip', ['netns', 'del', name]);
  }
}

async function run(topology: Topology, n: number, kernel: boolean): Promise<Result> {
  const names = nodeNames(topology, n);
  const sessions = sessionsOf(topology, n);
  const procs = Math.min(
    names.length,
    PROCS !== undefined ? Number(PROCS) : Math.max(1, Math.ceil((2 * sessions) / SOCKETS_PER_PROCESS)),
  );
  const prefix = `tcb${process.pid % 10000}-`;
  if (kernel) makeNamespaces(prefix, names.length);
  const workers: ChildProcess[] = [];
  const cleanup = () => {
    for (const w of workers) w.kill('SIGKILL');
    if (kernel) deleteNamespaces(prefix);
  };
  process.once('exit', cleanup);
  try {
    const t0 = now();
    const per = Math.ceil(names.length / procs);
    const ups: Promise<number>[] = [];
    const seenBy = new Map<ChildProcess, (m: FromWorker) => void>();
    for (let w = 0; w < procs; w++) {
      const spec: WorkerSpec = {
        topology,
        n,
        from: w * per,
        to: Math.min(names.length, (w + 1) * per),
        ...(kernel ? { netnsPrefix: prefix } : {}),
      };
      const child = fork(process.argv[1]!, ['--worker', JSON.stringify(spec)], {
        execArgv: ['--expose-gc'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      workers.push(child);
      ups.push(
        new Promise((resolve, reject) => {
          child.on('message', (m: FromWorker) => {
            if (m.t === 'up') resolve(m.bytesPerDaemon * (spec.to - spec.from));
            else if (m.t === 'failed') reject(new Error(m.message));
            else seenBy.get(child)?.(m);
          });
          child.once('exit', (code) => reject(new Error(`worker ${w} exited (${code})`)));
        }),
      );
    }
    const bytes = (await Promise.all(ups)).reduce((a, b) => a + b, 0);
    const convergeS = (now() - t0) / 1000;

    const worst: number[] = [];
    const each: number[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const owner = `node${t % n}`;
      const block = blockOf(t);
      const answers = workers.map(
        (child) =>
          new Promise<readonly number[]>((resolve) =>
            seenBy.set(child, (m) => {
              if (m.t === 'seen' && m.block === block) resolve(m.at);
            }),
          ),
      );
      const start = now();
      for (const child of workers) child.send({ t: 'claim', owner, block } satisfies ToWorker);
      const times = (await Promise.all(answers)).flat().map((at) => at - start);
      worst.push(Math.max(...times));
      each.push(...times);
    }
    await Promise.all(
      workers.map(
        (child) =>
          new Promise((r) => {
            child.once('exit', r);
            child.send({ t: 'stop' } satisfies ToWorker);
          }),
      ),
    );
    return {
      topology,
      nodes: n,
      sessions,
      processes: procs,
      kernel,
      convergeS,
      p50: pct(worst, 50),
      p99: pct(worst, 99),
      perNodeP50: pct(each, 50),
      mbPerDaemon: bytes / names.length / 1e6,
    };
  } finally {
    process.removeListener('exit', cleanup);
    cleanup();
  }
}

const workerArg = arg('worker');
if (workerArg !== undefined) {
  await worker(JSON.parse(workerArg) as WorkerSpec);
} else {
  const kernel =
    !args.includes('--no-kernel') &&
    process.getuid?.() === 0 &&
    spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).status === 0;
  console.log(
    kernel
      ? "Timed to the route in every other node's kernel (a network namespace and a FelixDataplane per node)."
      : `Timed to the hand-off to each node's dataplane (${args.includes('--no-kernel') ? '--no-kernel' : 'not root: no network namespaces'}).`,
  );
  const results: Result[] = [];
  for (const topology of TOPOLOGIES)
    for (const n of SIZES) {
      try {
        const r = await run(topology, n, kernel);
        results.push(r);
        console.log(
          `${r.topology.padEnd(10)} ${String(r.nodes).padStart(4)} nodes  ${String(r.sessions).padStart(6)} sessions  ` +
            `${r.processes} process(es)  up in ${r.convergeS.toFixed(1)} s  block->every node p50 ${r.p50.toFixed(1)} ms ` +
            `p99 ${r.p99.toFixed(1)} ms  (per node p50 ${r.perNodeP50.toFixed(1)} ms)  ${r.mbPerDaemon.toFixed(2)} MB per daemon`,
        );
      } catch (e) {
        console.log(`${topology} of ${n}: failed: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    }
  console.log(
    '\n| topology | nodes | sessions | processes | all up | block to every node p50 | p99 | per node p50 | memory per daemon |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.topology} | ${r.nodes} | ${r.sessions} | ${r.processes} | ${r.convergeS.toFixed(1)} s | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.perNodeP50.toFixed(1)} ms | ${r.mbPerDaemon.toFixed(2)} MB |`,
    );
}
