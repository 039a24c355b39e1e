// `npm run bench:cni`: how long a runtime waits on the tabby plugin. ADD and DEL of N pods
// (default 200), each in its own network namespace, with Tabby's IPAM on a YAML-directory
// datastore, two ways: the plugin doing the datastore work itself (`tabby`, node_socket
// none) and delegating it to a tabby-node running beside it on the same datastore
// (`tabby (daemon)`); beside Debian's reference `ptp` + `host-local` plugins doing the same
// work (a veth into the pod, a /32, routes) in the same run, and beside a bare `node -e 0`,
// the floor for any plugin written for Node. Calls are interleaved per pod (node -e 0,
// tabby, tabby (daemon), ptp) so load from elsewhere on the machine falls on all alike.
// Then, unless `--concurrent 0`, the same with 8 calls at once, as a runtime starting many
// pods does.
//
// The plugins and tabby-node (packages/node/bin/tabby-node.js: its start-up, BGP speaker
// and CNI service; no HTTP) run inside a "node" namespace (tcb-node-…), as on a host; every
// namespace the bench makes starts with `tcb-` and is removed on exit, Ctrl-C included.
// Needs root, iproute2 and /usr/lib/cni/{ptp,host-local} (Debian: containernetworking-plugins).
//
// Options: --pods N (200), --concurrent C (8; 0: none), --bin FILE (the tabby executable:
// default the bundle dist/bundle/tabby.cjs; bin/tabby.js for the unbundled build),
// --v6 (dual-stack tabby). tabby sees TABBY_COMPILE_CACHE as set here.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import type { AnyResource } from '@tabby/datastore';
import { openBackend } from '@tabby/datastore';
import { kernelUnavailable, nodeNetns, TestNetns } from '../test/kernel-support.js';

const CNI_DIR = '/usr/lib/cni';
const NET = 'tcb-net';
const NODE = 'tcb-node';
const POOL4 = '10.70.0.0/16';
const POOL6 = 'fd70::/112';
const PTP_SUBNET = '10.71.0.0/16';
const SELF = fileURLToPath(import.meta.url);
const BUNDLE = fileURLToPath(new URL('../bundle/tabby.cjs', import.meta.url));
const TABBY_NODE = fileURLToPath(new URL('../../../node/bin/tabby-node.js', import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** What the orchestrator hands the runner (inside the node namespace). */
interface Plan {
  readonly pods: readonly string[];
  /** A namespace per pod for `tabby (daemon)`. */
  readonly daemonPods: readonly string[];
  readonly concurrent: number;
  readonly bin: string;
  readonly dir: string;
  readonly hostLocalDir: string;
  readonly v6: boolean;
  /** tabby-node's socket and where it keeps its node name. */
  readonly socket: string;
  readonly nodenameFile: string;
}

/** One row: a label and its latencies in ms. */
type Series = Record<string, number[]>;

interface Outcome {
  readonly sequential: Series;
  readonly concurrent: Series | undefined;
}

// ---------------------------------------------------------------- the runner (node netns)

interface Call {
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
  readonly stdin: string;
}

/** Runs one process to its exit; its wall time in ms. Throws on a non-zero exit. */
function timed(c: Call): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(c.argv[0]!, c.argv.slice(1), {
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...c.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${c.argv.join(' ')} ${c.env['CNI_COMMAND'] ?? ''} exited ${code}: ${out}`));
    });
    // A process that exits before reading stdin (node -e 0, a plugin that failed to load)
    // closes the pipe: its exit code tells, not an EPIPE thrown at the bench.
    child.stdin.on('error', () => undefined);
    child.stdin.end(c.stdin);
  });
}

function calls(plan: Plan, i: number, round: string): Record<string, (cmd: string) => Call> {
  const pod = plan.pods[i]!;
  // The daemon's pods have namespaces of their own: two tabby attachments in one namespace
  // would both route 169.254.1.1. Each engine its own interface and pod name.
  const base = (ifname: string, plugin: string): Record<string, string> => ({
    CNI_CONTAINERID: `${plugin}-${round}-${pod}`,
    CNI_NETNS: `/var/run/netns/${plugin === 'tabbyd' ? plan.daemonPods[i]! : pod}`,
    CNI_IFNAME: ifname,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}-${round}-${plugin}`,
    CNI_PATH: CNI_DIR,
  });
  const tabbyConf = (socket: string): string =>
    JSON.stringify({
      cniVersion: '1.1.0',
      name: NET,
      type: 'tabby',
      nodename: NODE,
      datastore: { type: 'yaml', dir: plan.dir },
      node_socket: socket,
      ipam: {
        type: 'tabby-ipam',
        assign_ipv4: 'true',
        assign_ipv6: plan.v6 ? 'true' : 'false',
        ipv4_pools: [POOL4],
        ...(plan.v6 ? { ipv6_pools: [POOL6] } : {}),
      },
    });
  const ptpConf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'tcb-ptp',
    type: 'ptp',
    ipMasq: false,
    ipam: { type: 'host-local', subnet: PTP_SUBNET, dataDir: plan.hostLocalDir },
  });
  return {
    'node -e 0': () => ({ argv: [process.execPath, '-e', '0'], env: {}, stdin: '' }),
    tabby: (cmd) => ({
      argv: [process.execPath, plan.bin],
      env: { ...base('eth0', 'tabby'), ...cacheEnv, CNI_COMMAND: cmd },
      stdin: tabbyConf('none'),
    }),
    'tabby (daemon)': (cmd) => ({
      argv: [process.execPath, plan.bin],
      env: { ...base('eth2', 'tabbyd'), ...cacheEnv, CNI_COMMAND: cmd },
      stdin: tabbyConf(plan.socket),
    }),
    'ptp+host-local': (cmd) => ({
      argv: [join(CNI_DIR, 'ptp')],
      env: { ...base('eth1', 'ptp'), CNI_COMMAND: cmd },
      stdin: ptpConf,
    }),
  };
}

/** The compile cache setting, passed on to tabby (a runtime passes its environment on). */
const cacheEnv: Record<string, string> =
  process.env['TABBY_COMPILE_CACHE'] === undefined
    ? {}
    : { TABBY_COMPILE_CACHE: process.env['TABBY_COMPILE_CACHE'] };

const ENGINES = ['node -e 0', 'tabby', 'tabby (daemon)', 'ptp+host-local'] as const;

async function sequential(plan: Plan): Promise<Series> {
  const s: Series = {};
  const push = (k: string, ms: number): void => void (s[k] ??= []).push(ms);
  for (const cmd of ['ADD', 'DEL'])
    for (let i = 0; i < plan.pods.length; i++) {
      const c = calls(plan, i, 's');
      for (const e of ENGINES) push(e === 'node -e 0' ? e : `${e} ${cmd}`, await timed(c[e]!(cmd)));
    }
  return s;
}

async function concurrent(plan: Plan): Promise<Series> {
  const s: Series = {};
  for (const e of ENGINES)
    for (const cmd of e === 'node -e 0' ? ['-'] : ['ADD', 'DEL']) {
      const key = e === 'node -e 0' ? e : `${e} ${cmd}`;
      const lat: number[] = (s[key] = []);
      let next = 0;
      await Promise.all(
        Array.from({ length: plan.concurrent }, async () => {
          for (let i = next++; i < plan.pods.length; i = next++)
            lat.push(await timed(calls(plan, i, 'c')[e]!(cmd)));
        }),
      );
    }
  return s;
}

/** tabby-node in this (the node's) namespace, on the bench's datastore; resolves once its CNI service answers. */
async function startDaemon(plan: Plan): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      TABBY_NODE,
      '--node',
      NODE,
      '--datastore-dir',
      plan.dir,
      '--socket',
      plan.socket,
      '--nodename-file',
      plan.nodenameFile,
      '--http',
      'none',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tabby-node exited ${child.exitCode}: ${log}`);
    if (Date.now() - t0 > 30_000) throw new Error(`tabby-node did not serve within 30 s: ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(plan.socket);
      s.on('connect', () => s.write('{"cmd":"cni.hello","protocol":1}\n'));
      s.on('data', (d) => {
        s.destroy();
        resolve(d.toString().includes('"ok":true'));
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function runner(planFile: string): Promise<void> {
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const daemon = await startDaemon(plan);
  try {
    // Warm the page cache and the compile cache, so the first pod is not an outlier.
    await timed(calls(plan, 0, 'w')['node -e 0']!('-'));
    const out: Outcome = {
      sequential: await sequential(plan),
      concurrent: plan.concurrent > 0 ? await concurrent(plan) : undefined,
    };
    process.stdout.write(JSON.stringify(out));
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
}

// ---------------------------------------------------------------- the orchestrator (host)

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function table(title: string, s: Series): void {
  const stat = (k: string): { p50: number; p99: number; n: number } => {
    const v = [...(s[k] ?? [])].sort((a, b) => a - b);
    return { p50: pct(v, 50), p99: pct(v, 99), n: v.length };
  };
  const floor = stat('node -e 0');
  console.log(`\n${title}`);
  console.log(
    `${'call'.padEnd(22)} ${'n'.padStart(4)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}` +
      `  ${'p50 / node'.padStart(10)} ${'p99 / node'.padStart(10)}  ${'p50 / ptp'.padStart(9)}`,
  );
  for (const k of Object.keys(s).sort((a, b) => order(a) - order(b))) {
    const r = stat(k);
    const cmd = k.split(' ').at(-1)!;
    const ptp = k === 'node -e 0' ? undefined : stat(`ptp+host-local ${cmd}`);
    console.log(
      `${k.padEnd(22)} ${String(r.n).padStart(4)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)}` +
        `  ${(r.p50 / floor.p50).toFixed(2).padStart(10)} ${(r.p99 / floor.p99).toFixed(2).padStart(10)}` +
        `  ${ptp === undefined ? '' : (r.p50 / ptp.p50).toFixed(2).padStart(9)}`,
    );
  }
}

const order = (k: string): number =>
  [
    'node -e 0',
    'tabby ADD',
    'tabby (daemon) ADD',
    'ptp+host-local ADD',
    'tabby DEL',
    'tabby (daemon) DEL',
    'ptp+host-local DEL',
  ].indexOf(k);

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

async function orchestrate(): Promise<number> {
  const why =
    kernelUnavailable() ??
    (['ptp', 'host-local'].every((p) => existsSync(join(CNI_DIR, p)))
      ? undefined
      : `${CNI_DIR}/ptp and host-local are missing (Debian: containernetworking-plugins)`);
  if (why !== undefined) {
    console.error(`bench:cni cannot run: ${why}`);
    return 1;
  }
  const n = Number(arg('pods') ?? 200);
  const conc = Number(arg('concurrent') ?? 8);
  const bin = resolvePath(arg('bin') ?? BUNDLE);
  if (!existsSync(bin)) {
    console.error(`bench:cni: ${bin} does not exist (npm run bundle:cni makes the bundle)`);
    return 1;
  }
  const v6 = process.argv.includes('--v6');
  const tmp = mkdtempSync(join(tmpdir(), 'tcb-'));
  const made: TestNetns[] = [];
  const cleanup = (): void => {
    for (const ns of made) ns.destroy();
    made.length = 0;
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const dir = join(tmp, 'datastore');
    const b = await openBackend({ type: 'yaml', dir });
    try {
      await b.create(res('IPPool', 'tcb-pool4', { cidr: POOL4, blockSize: 26 }));
      if (v6) await b.create(res('IPPool', 'tcb-pool6', { cidr: POOL6, blockSize: 122 }));
      await b.create(res('Node', NODE, {}));
    } finally {
      await b.close();
    }
    const node = nodeNetns(v6, 'tcb');
    made.push(node);
    const pods: string[] = [];
    const daemonPods: string[] = [];
    for (let i = 0; i < 2 * n; i++) {
      const ns = TestNetns.create('pod', 'tcb');
      made.push(ns);
      (i < n ? pods : daemonPods).push(ns.name);
    }
    const plan: Plan = {
      pods,
      daemonPods,
      concurrent: conc,
      bin,
      dir,
      hostLocalDir: join(tmp, 'host-local'),
      v6,
      socket: join(tmp, 'node.sock'),
      nodenameFile: join(tmp, 'nodename'),
    };
    const planFile = join(tmp, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));
    console.log(
      `bench:cni: ${n} pods, tabby = ${bin} (${v6 ? 'dual-stack' : 'IPv4'}, YAML datastore), ` +
        `ptp + host-local from ${CNI_DIR}, node ${process.version}, ` +
        `compile cache ${process.env['TABBY_COMPILE_CACHE'] ?? 'default'}`,
    );
    const out = await new Promise<Outcome>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', node.name, process.execPath, SELF, '--runner', planFile], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (text += s));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`the runner exited ${code}`));
        else resolve(JSON.parse(text) as Outcome);
      });
    });
    table(`sequential: one call at a time, ${n} pods`, out.sequential);
    if (out.concurrent !== undefined) table(`concurrent: ${conc} calls at a time, ${n} pods`, out.concurrent);
    return 0;
  } finally {
    cleanup();
  }
}

const r = process.argv.indexOf('--runner');
if (r >= 0) await runner(process.argv[r + 1]!);
else process.exitCode = await orchestrate();
