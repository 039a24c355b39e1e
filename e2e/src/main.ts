// `npm run e2e`: the cluster lab. Two processes:
//
// - the outer one (this file without --inner) checks the facilities, removes a crashed run's
//   leftovers, makes the management namespace, runs the inner one inside it under a time
//   limit, and whatever happened then kills what is left in the lab's namespaces and deletes
//   them;
// - the inner one (--inner), inside e2e-mgmt so it reaches etcd and the nodes' /metrics on the
//   management segment, builds the racks, starts the ToRs, etcd and the nodes, makes the pods,
//   runs the scenarios and prints the pass/fail table. It exits 0 only if every check passed.
//
// Usage: npm run e2e [-- --only mesh,restart] [--list] [--keep-dir] [--ipip]
//   --ipip: the IPIP CrossSubnet lab (setup, mesh, ipip) inside the qemu guest of e2e/lab/
//   E2E_OUTAGE_S  the datastore outage (default 60)    E2E_TIMEOUT_S  the whole run (default 600)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '@tabby/node';
import { Recorder } from './checks.js';
import type { Pod, PoolName } from './cluster.js';
import { Cluster } from './cluster.js';
import type { Lab } from './scenarios.js';
import {
  checkMetrics,
  datastoreOutage,
  layout,
  nodeKilled,
  restartUnderPing,
  torFlap,
  crossSubnet,
} from './scenarios.js';
import { sleep, until } from './sh.js';
import { Tor } from './tor.js';
import type { LabNode } from './topology.js';
import { buildFabric, buildManagement, cleanup, MGMT_NS, NODES, RACKS } from './topology.js';

interface Scenario {
  readonly name: string;
  readonly what: string;
  readonly run: (lab: Lab, rec: Recorder) => Promise<void>;
  /** Run by default only with --ipip (in the qemu guest), and only those with it. */
  readonly ipip?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'mesh', what: 'full mesh + ToRs', run: layout('mesh'), ipip: true },
  { name: 'vxlan', what: 'VXLAN CrossSubnet across racks (mesh)', run: crossSubnet('vxlan') },
  {
    name: 'ipip',
    what: 'IPIP CrossSubnet across racks (mesh; --ipip: in the qemu guest)',
    run: crossSubnet('ipip'),
    ipip: true,
  },
  { name: 'reflectors', what: 'route reflectors a1, b1 + ToRs', run: layout('reflectors') },
  { name: 'tors-only', what: 'ToRs only (mesh off)', run: layout('tors-only') },
  { name: 'restart', what: 'tabby-node restart under 20 ms pings', run: restartUnderPing },
  { name: 'flap', what: 'ToR session disabled and enabled', run: torFlap },
  { name: 'outage', what: 'etcd stopped, then a change', run: datastoreOutage },
  { name: 'kill', what: 'a node killed, link down', run: nodeKilled },
];

const SELF = fileURLToPath(import.meta.url);
const t0 = performance.now();
const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
const say = (s: string) => console.log(`${stamp()} ${s}`);

/** Why the lab cannot run here, or undefined. */
function missing(): string | undefined {
  if (process.platform !== 'linux') return `the lab needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, veths, BIRD on port 179)';
  for (const [cmd, pkg] of [
    ['ip', 'iproute2'],
    ['bird', 'bird2'],
    ['birdc', 'bird2'],
    ['etcd', 'etcd-server'],
    ['ping', 'iputils-ping'],
  ] as const)
    if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0)
      return `${cmd} is not installed (apt install ${pkg})`;
  const probe = spawnSync('ip', ['netns', 'add', 'e2e-probe'], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot make a network namespace: ${probe.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', 'e2e-probe']);
  return undefined;
}

interface Args {
  readonly only: Set<string> | undefined;
  readonly keepDir: boolean;
  readonly list: boolean;
  readonly ipip: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let only: Set<string> | undefined;
  let keepDir = false;
  let list = false;
  let ipip = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--only') {
      only = new Set((argv[++i] ?? '').split(',').filter(Boolean));
      const unknown = [...only].filter((n) => !SCENARIOS.some((s) => s.name === n));
      if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; --list names them`);
    } else if (a === '--keep-dir') keepDir = true;
    else if (a === '--list') list = true;
    else if (a === '--ipip') ipip = true;
    else
      throw new Error(
        `unknown argument ${a}; usage: npm run e2e [-- --only mesh,restart] [--list] [--keep-dir] [--ipip]`,
      );
  }
  if (!ipip && only?.has('ipip') === true)
    throw new Error('the ipip scenario needs --ipip (it runs in the qemu guest)');
  return { only, keepDir, list, ipip };
}

/** The scenarios this run does, in order. */
function selected(args: Args): Scenario[] {
  return SCENARIOS.filter((s) =>
    args.only !== undefined ? args.only.has(s.name) : args.ipip ? s.ipip === true : s.name !== 'ipip',
  );
}

/**
 * --ipip on the host: the same lab with the IPIP pool, inside the qemu guest (Debian's stock
 * kernel has the ipip module this host's lacks; e2e/lab/kvm-run.sh, the host's files read-only).
 */
function runInGuest(argv: readonly string[], limitS: number): number {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' }).status !== 0) {
    const why =
      'qemu-system-x86_64 is not installed (apt install qemu-system-x86 kmod xz-utils busybox-static)';
    if (process.env['CI'] === 'true') {
      console.error(`e2e --ipip: cannot run under CI: ${why}`);
      return 1;
    }
    console.log(`e2e --ipip: SKIPPED: ${why}`);
    return 0;
  }
  say('booting the qemu guest for the IPIP lab (e2e/lab/kvm-run.sh)');
  const r = spawnSync(
    'bash',
    [
      join(dirname(SELF), '..', 'lab', 'kvm-run.sh'),
      '--modules',
      'ipip',
      '--timeout',
      String(limitS),
      '--env',
      'E2E_OUTAGE_S',
      '--env',
      'E2E_TIMEOUT_S',
      '--',
      process.execPath,
      SELF,
      ...argv,
    ],
    { stdio: 'inherit', env: { ...process.env, E2E_TIMEOUT_S: String(limitS - 30) } },
  );
  return r.status ?? 1;
}

async function outer(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.list) {
    console.log(
      table(
        ['scenario', 'what'],
        SCENARIOS.map((s) => [s.name, s.what]),
      ),
    );
    return 0;
  }
  const why = missing();
  if (why !== undefined) {
    if (process.env['CI'] === 'true') {
      console.error(`e2e: cannot run under CI: ${why}`);
      return 1;
    }
    console.log(`e2e: SKIPPED: ${why}`);
    return 0;
  }
  const left = cleanup();
  if (left.length > 0) say(`removed an earlier run's leftovers: ${left.join(' ')}`);
  const limitS = Number(process.env['E2E_TIMEOUT_S'] ?? 600);
  if (args.ipip && process.env['LAB_GUEST'] !== '1') return runInGuest(argv, limitS);
  let code: number;
  try {
    buildManagement();
    const child = spawn('ip', ['netns', 'exec', MGMT_NS, process.execPath, SELF, '--inner', ...argv], {
      stdio: 'inherit',
    });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const timer = setTimeout(() => {
      console.error(`e2e: the run passed its ${limitS} s limit (E2E_TIMEOUT_S): stopping it`);
      child.kill('SIGKILL');
    }, limitS * 1000);
    code = await new Promise<number>((r) => child.once('exit', (c, s) => r(c ?? (s === null ? 1 : 128))));
    clearTimeout(timer);
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  } finally {
    const gone = cleanup();
    say(`removed the lab's namespaces (${gone.length})`);
  }
  return code;
}

async function inner(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const dir = mkdtempSync(join(tmpdir(), 'tabby-e2e-'));
  const cluster = new Cluster(dir, args.ipip);
  const tors = { a: new Tor(RACKS.a, dir), b: new Tor(RACKS.b, dir) };
  const outageMs = Number(process.env['E2E_OUTAGE_S'] ?? 60) * 1000;
  const lab: Lab = { cluster, tors, say, outageMs, mode: undefined };
  // However this process ends, nothing it started outlives it (the outer one checks again).
  process.once('exit', () => {
    for (const p of cluster.procs.values()) p.kill('SIGKILL');
    for (const t of Object.values(tors)) if (t.pid !== undefined) process.kill(t.pid, 'SIGKILL');
  });
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));

  const results: { name: string; rec: Recorder; ms: number }[] = [];
  const setup = new Recorder('setup');
  const scrape = { n: 0, retried: 0, failed: [] as string[] };
  let scraper: ReturnType<typeof setInterval> | undefined;
  say(`lab directory ${dir} (node and BIRD logs, configs, sockets)`);
  try {
    const ts = performance.now();
    buildFabric();
    say('namespaces: ToR-A, ToR-B, a1, a2 (rack 10.10.1.0/24), b1, b2 (rack 10.10.2.0/24), e2e-mgmt');
    await Promise.all(Object.values(tors).map((t) => t.start()));
    say(
      `BIRD ToRs up (${readFileSync(join(dir, 'bird-a.conf'), 'utf8').split('\n').length} config lines each)`,
    );
    await cluster.startDatastore();
    say(`etcd at ${cluster.etcd.endpoint}`);
    await cluster.applyBase();
    await cluster.setMode('mesh');
    lab.mode = 'mesh';
    for (const n of NODES) cluster.start(n);
    await cluster.waitStarted(NODES);
    for (const n of NODES) cluster.markUp(n);
    say('4 tabby-node processes answering');
    // Each node's tunnel addresses come from start-up; wait for them on the Nodes.
    await until(
      async () => {
        for (const n of NODES) {
          const node = await cluster.ds.get('Node', n.name);
          if (node?.spec.ipv4VXLANTunnelAddr === undefined) return false;
          if (args.ipip && node.spec.bgp?.ipv4IPIPTunnelAddr === undefined) return false;
        }
        return true;
      },
      'tunnel addresses on every Node',
      30_000,
    );
    const podsOf = (n: LabNode): [string, PoolName][] => [
      [`web-${n.name}`, 'plain'],
      [`db-${n.name}`, 'plain'],
      [`vx-${n.name}`, 'vxlan'],
      ...(args.ipip ? [[`ip-${n.name}`, 'ipip'] as [string, PoolName]] : []),
    ];
    for (const n of NODES)
      for (const [name, pool] of podsOf(n)) {
        const p = cluster.addPod(n, name, pool);
        say(`pod e2e/${name} on ${n.name}: ${p.ip} (CNI ADD, ${pool} pool)`);
      }
    setup.check(`lab built: ToRs, etcd, 4 nodes, ${cluster.pods.length} pods through CNI ADD`, true);
    results.push({ name: 'setup', rec: setup, ms: performance.now() - ts });

    // Prometheus-style: every second, one scrape per node at a time. A scrape that fails is
    // tried once more at once (a keep-alive connection the server closed as it was reused
    // is a client-side race, not the daemon's failure); failing twice counts.
    const busy = new Set<string>();
    const scrapeOnce = async (n: LabNode) => {
      busy.add(n.name);
      try {
        await cluster.metrics(n).catch(() => {
          scrape.retried++;
          return cluster.metrics(n);
        });
      } catch (e) {
        const cause = (e as { cause?: Error }).cause;
        if (!cluster.down.has(n.name))
          scrape.failed.push(
            `${stamp()} ${n.name}: ${(e as Error).message}${cause === undefined ? '' : ` (${cause.message})`}`,
          );
      } finally {
        busy.delete(n.name);
      }
    };
    scraper = setInterval(() => {
      for (const n of NODES) {
        if (cluster.down.has(n.name) || busy.has(n.name)) continue;
        scrape.n++;
        void scrapeOnce(n);
      }
    }, 1000);

    for (const s of selected(args)) {
      say(`== ${s.name}: ${s.what}`);
      const rec = new Recorder(s.name);
      const t = performance.now();
      try {
        await s.run(lab, rec);
      } catch (e) {
        rec.check('ran to the end', false, (e as Error).stack ?? String(e));
      }
      results.push({ name: s.name, rec, ms: performance.now() - t });
      for (const c of rec.checks)
        say(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${c.detail === '' ? '' : `: ${c.detail}`}`);
      for (const f of rec.figures) say(`  ${f}`);
    }
  } catch (e) {
    setup.check('lab built', false, (e as Error).stack ?? String(e));
    if (!results.some((r) => r.rec === setup)) results.push({ name: 'setup', rec: setup, ms: 0 });
  }
  if (scraper !== undefined) {
    clearInterval(scraper);
    const metricsRec = new Recorder('metrics');
    metricsRec.check(
      `/metrics scraped every second from every running node (${scrape.n} scrapes, ${scrape.retried} retried once)`,
      scrape.n > 0 && scrape.failed.length === 0,
      scrape.failed.slice(0, 5).join('; '),
    );
    results.push({ name: 'metrics', rec: metricsRec, ms: 0 });
    for (const c of metricsRec.checks)
      say(`${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${c.detail === '' ? '' : `: ${c.detail}`}`);
  }

  // Teardown through CNI DEL, then nothing may be left allocated but the tunnel addresses.
  if (setup.passed) {
    const td = new Recorder('teardown');
    const t = performance.now();
    try {
      await teardown(lab, td);
    } catch (e) {
      td.check('ran to the end', false, (e as Error).stack ?? String(e));
    }
    results.push({ name: 'teardown', rec: td, ms: performance.now() - t });
  }
  await cluster.shutdown().catch(() => undefined);
  await Promise.all(Object.values(tors).map((t) => t.stop()));

  const ok = results.every((r) => r.rec.passed);
  console.log(
    `\n${table(
      ['scenario', 'checks', 'time', 'result'],
      results.map((r) => [
        r.name,
        `${r.rec.checks.filter((c) => c.ok).length}/${r.rec.checks.length}`,
        `${(r.ms / 1000).toFixed(1)} s`,
        r.rec.passed ? 'pass' : 'FAIL',
      ]),
    )}\n`,
  );
  for (const r of results)
    for (const c of r.rec.checks.filter((x) => !x.ok))
      console.log(`FAIL ${r.name}: ${c.what}${c.detail === '' ? '' : `\n  ${c.detail}`}`);
  if (!ok) {
    for (const n of NODES)
      console.log(`\n--- ${n.name}: the end of ${cluster.logFile(n)}\n${cluster.logTail(n)}`);
    for (const t of Object.values(tors))
      console.log(`\n--- ToR-${t.rack.name}: the end of ${t.logFile}\n${tail(t.logFile)}`);
  }
  console.log(`\ne2e: ${ok ? 'PASS' : 'FAIL'} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (args.keepDir || !ok) console.log(`e2e: logs kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  return ok ? 0 : 1;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(none)';
  }
}

/** CNI DEL for every pod; then IPAM holds only the nodes' tunnel addresses, and no pod route is left. */
async function teardown(lab: Lab, rec: Recorder): Promise<void> {
  const pods: Pod[] = [...lab.cluster.pods];
  const failed: string[] = [];
  for (const p of pods)
    try {
      lab.cluster.delPod(p);
    } catch (e) {
      failed.push((e as Error).message);
    }
  rec.check(`CNI DEL of all ${pods.length} pods`, failed.length === 0, failed.join('; '));
  const handles = (await lab.cluster.ds.list('IPAMHandle')).items.map((h) => h.metadata.name);
  const leaked = handles.filter((h) => !/^(vxlan|ipip)-tunnel-addr-/.test(h));
  rec.check(
    'no address leaked: only tunnel-address handles left in IPAM',
    leaked.length === 0,
    leaked.join(', '),
  );
  const usage = await lab.cluster.ipam().getUtilization();
  const inUse = usage.pools.reduce((a, p) => a + p.inUse, 0);
  const tunnels = NODES.length * (lab.cluster.ipip ? 2 : 1);
  rec.equal(`IPAM in use: the ${tunnels} tunnel addresses only`, inUse, tunnels);
  await sleep(500);
  const left = NODES.flatMap((n) =>
    spawnSync('ip', ['-n', n.ns, 'route', 'show', 'proto', '84'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.includes(' dev cali'))
      .map((l) => `${n.name}: ${l}`),
  );
  rec.check(
    "no pod route left on any node (felix-lite removed the endpoints' routes)",
    left.length === 0,
    left.join('; '),
  );
  await checkMetrics(lab, rec);
}

const argv = process.argv.slice(2);
const run = argv[0] === '--inner' ? inner(argv.slice(1)) : outer(argv);
run.then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`e2e: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
