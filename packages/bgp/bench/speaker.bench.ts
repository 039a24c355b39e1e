// `npm run bench:speaker`: bgperf's shape on loopback. Tester peers -> target -> monitor peer,
// where the target is each BGP speaker in turn (BIRD 2, FRR bgpd, GoBGP; bgp-ts once it
// exists), started fresh for every case with the same peers.
//
// Cases:
//   1x1M     1 tester x 1,000,000 /24s, eBGP route server, only the monitor receives
//   10x100k  10 testers x 100,000 /24s, eBGP route server, only the monitor receives
//   500x100  500 route-reflector clients x 100 /26s, iBGP; every client must end up holding
//            the 49,900 routes of the others (a Tabby cluster's shape), and the monitor all
//
// Per case and target: session bring-up time; time from the first UPDATE sent to every
// receiver holding everything (announce) and to every receiver holding nothing after the
// testers withdraw all (withdraw); the target's peak RSS (VmHWM) and CPU seconds over the
// announce and withdraw phases; bytes per path ((peak RSS - idle RSS after bring-up) / paths);
// hold-timer expiries (NOTIFICATION code 4 received by a peer, or a peer's own hold timer).
//
// Options:
//   --targets bird,frr,gobgp    (default: every installed one)
//   --cases 1x1M,10x100k,500x100 (default: all)
//   --scale 0.1                 prefix counts times this (peer counts stay)
//   --timeout 300               seconds per phase before "did not converge"
//   --rounds 1                  run each case and target this many times; the table has medians
//   --slow                      also run combinations known to take minutes (GoBGP at full scale)
//   --baseline bird             the target the ratio columns compare to (default bgp-ts, else bird)
//   --json FILE                 write the rows as JSON too
//   --keep                      keep each daemon's working directory (config, log)
//   --port 17600                first listen port (two per case and target; default from the pid)

import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DaemonKind, DaemonRole, ProcessUsage } from '../harness/daemons.js';
import {
  daemonSettleMs,
  daemonUnavailable,
  daemonVersion,
  startDaemon,
  waitQuiet,
} from '../harness/daemons.js';
import type { PathAttributes } from '../src/wire/index.js';
import { asn } from '../src/wire/index.js';
import { PrefixIndex, TestPeer, intToIpv4, ipv4BlockFrom, ipv4ToInt } from '../harness/peers.js';
import { bgpTsTarget } from './bgp-ts-target.js';

// ---------------------------------------------------------------------------------------------
// Targets: anything that can be started with a set of peers and has a pid.

export interface TargetPeer {
  readonly address: string;
  readonly asn: number;
  /** Whether the target sends routes to this peer. */
  readonly receive: boolean;
}

export interface TargetSpec {
  readonly role: DaemonRole;
  readonly asn: number;
  readonly routerId: string;
  readonly address: string;
  readonly port: number;
  readonly holdTime: number;
  readonly peers: readonly TargetPeer[];
  readonly keepDir: boolean;
}

export interface RunningTarget {
  readonly pid: number;
  readonly address: string;
  readonly port: number;
  readonly exited: boolean;
  /** Where to look when something went wrong. */
  readonly logFile?: string;
  usage(): ProcessUsage;
  stop(): Promise<void>;
}

export interface BenchTarget {
  /** Short name used in --targets and the table: bird, frr, gobgp, bgp-ts. */
  readonly name: string;
  /** Version text, or undefined when it cannot run here. */
  version(): string | undefined;
  unavailable(): string | undefined;
  /** Milliseconds after the last session came up before the target advertises to new peers. */
  settleMs?(sessions: number): number;
  /** A reason to skip this case unless --slow (it is known to take many minutes). */
  slow?(c: ScaledCase): string | undefined;
  start(spec: TargetSpec): Promise<RunningTarget>;
}

function daemonTarget(kind: DaemonKind, slow?: (c: ScaledCase) => string | undefined): BenchTarget {
  return {
    name: kind,
    version: () => daemonVersion(kind),
    unavailable: () => daemonUnavailable(kind),
    settleMs: (sessions) => daemonSettleMs(kind, sessions),
    ...(slow === undefined ? {} : { slow }),
    start: async (spec) => {
      const d = await startDaemon(kind, {
        asn: spec.asn,
        routerId: spec.routerId,
        address: spec.address,
        port: spec.port,
        role: spec.role,
        holdTime: spec.holdTime,
        keepDir: spec.keepDir,
        peers: spec.peers,
      });
      return {
        pid: d.pid,
        address: d.address,
        port: d.port,
        logFile: d.logFile,
        get exited() {
          return d.exited;
        },
        usage: () => d.usage(),
        stop: () => d.stop(),
      };
    },
  };
}

const TARGETS: readonly BenchTarget[] = [
  daemonTarget('bird'),
  daemonTarget('frr'),
  daemonTarget('gobgp', (c) => {
    // Measured here with GoBGP 3.10: 1 x 1,000,000 took 73 s to announce and 27 s to withdraw
    // (run by default); 10 x 100,000 took 56 s and 256 s (once over 300 s), as it sends every
    // withdrawal to all ten other peers; 500 x 10 took 92 s and 66 s.
    if (c.def.key === '10x100k' && c.paths > 300_000) {
      return 'GoBGP took about 6 minutes here (withdrawal 256 s: 11M one-prefix UPDATEs)';
    }
    if (c.def.key === '500x100' && c.paths > 10_000) {
      return 'GoBGP took 92 s + 66 s for 500 x 10 here; 500 x 100 runs for many minutes';
    }
    return undefined;
  }),
  bgpTsTarget,
];

// ---------------------------------------------------------------------------------------------
// Cases

interface CaseDef {
  readonly key: string;
  readonly aliases: readonly string[];
  readonly role: DaemonRole;
  readonly testers: number;
  readonly perTester: number;
  readonly prefixLen: number;
  readonly base: string;
  /** Testers receive (and count) each other's routes too. */
  readonly fanout: boolean;
}

const CASES: readonly CaseDef[] = [
  {
    key: '1x1M',
    aliases: ['1x1000000', 'rs1'],
    role: 'route-server',
    testers: 1,
    perTester: 1_000_000,
    prefixLen: 24,
    base: '20.0.0.0',
    fanout: false,
  },
  {
    key: '10x100k',
    aliases: ['10x100000', 'rs10'],
    role: 'route-server',
    testers: 10,
    perTester: 100_000,
    prefixLen: 24,
    base: '20.0.0.0',
    fanout: false,
  },
  {
    key: '500x100',
    aliases: ['rr500', 'rr'],
    role: 'route-reflector',
    testers: 500,
    perTester: 100,
    prefixLen: 26,
    base: '10.64.0.0',
    fanout: true,
  },
];

interface ScaledCase {
  readonly def: CaseDef;
  readonly perTester: number;
  readonly paths: number;
  readonly label: string;
}

function scaleCase(def: CaseDef, scale: number): ScaledCase {
  const perTester = Math.max(1, Math.round(def.perTester * scale));
  return {
    def,
    perTester,
    paths: perTester * def.testers,
    label: `${def.testers} x ${perTester.toLocaleString('en-US')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  readonly targets: readonly BenchTarget[];
  readonly unknownTargets: readonly string[];
  readonly cases: readonly CaseDef[];
  readonly scale: number;
  readonly timeoutS: number;
  readonly rounds: number;
  readonly slow: boolean;
  readonly baseline: string;
  readonly json: string | undefined;
  readonly keep: boolean;
  readonly port: number | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const val = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    const eq = argv.find((a) => a.startsWith(`--${name}=`));
    return eq?.slice(name.length + 3);
  };
  const list = (name: string) =>
    val(name)
      ?.split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== '');
  const wantTargets = list('targets');
  const targets = wantTargets === undefined ? TARGETS : TARGETS.filter((t) => wantTargets.includes(t.name));
  const unknownTargets = (wantTargets ?? []).filter((n) => !TARGETS.some((t) => t.name === n));
  const wantCases = list('cases');
  const cases =
    wantCases === undefined
      ? CASES
      : CASES.filter((c) => wantCases.some((w) => w === c.key.toLowerCase() || c.aliases.includes(w)));
  if (wantCases !== undefined && cases.length === 0) {
    throw new Error(`--cases: none of ${wantCases.join(',')}; known: ${CASES.map((c) => c.key).join(', ')}`);
  }
  const scale = Number(val('scale') ?? '1');
  if (!(scale > 0 && scale <= 10)) throw new Error('--scale must be in (0, 10]');
  const timeoutS = Number(val('timeout') ?? '300');
  if (!(timeoutS > 0)) throw new Error('--timeout must be a positive number of seconds');
  const rounds = Number(val('rounds') ?? '1');
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) throw new Error('--rounds must be 1..50');
  const names = targets.map((t) => t.name);
  const baseline = val('baseline') ?? (names.includes('bgp-ts') ? 'bgp-ts' : 'bird');
  return {
    targets,
    unknownTargets,
    cases,
    scale,
    timeoutS,
    rounds,
    slow: argv.includes('--slow'),
    baseline,
    json: val('json'),
    keep: argv.includes('--keep'),
    port: (() => {
      const p = val('port');
      if (p === undefined) return undefined;
      const n = Number(p);
      if (!(Number.isInteger(n) && n >= 1024 && n < 65000)) throw new Error('--port must be 1024..64999');
      return n;
    })(),
  };
}

// ---------------------------------------------------------------------------------------------
// One case against one target

interface Row {
  readonly case: string;
  readonly target: string;
  readonly version: string;
  status: 'ok' | 'skipped' | 'failed' | 'timeout';
  note: string;
  readonly sessions: number;
  readonly paths: number;
  bringUpS?: number;
  announceS?: number;
  withdrawS?: number;
  idleRssBytes?: number;
  peakRssBytes?: number;
  /** Target CPU over the announce and withdraw phases. */
  cpuS?: number;
  /** Target CPU from start to the end of the case. */
  cpuTotalS?: number;
  bytesPerPath?: number;
  expiries: number;
  /** Sessions lost for another reason than a hold timer. */
  drops: number;
  /** This process's CPU over the announce and withdraw phases (the harness's own load). */
  harnessCpuS?: number;
  /** What the receivers got from the target, summed: UPDATEs, prefixes announced and
   *  withdrawn (every occurrence, so more than paths x receivers means repeats), bytes. */
  received?: { updates: number; announced: number; withdrawn: number; bytes: number };
  /** Each round's row when --rounds > 1 (the row itself holds the medians). */
  rounds?: Row[];
}

function median(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Rounds of one case and target: medians of every figure; any failed round makes it fail. */
function combine(rounds: readonly Row[]): Row {
  const first = rounds[0] as Row;
  if (rounds.length === 1) return first;
  const bad = rounds.find((r) => r.status !== 'ok');
  const out: Row = {
    ...first,
    status: bad?.status ?? 'ok',
    note: bad === undefined ? '' : `round ${rounds.indexOf(bad) + 1} of ${rounds.length}: ${bad.note}`,
    expiries: rounds.reduce((n, r) => n + r.expiries, 0),
    drops: rounds.reduce((n, r) => n + r.drops, 0),
    rounds: [...rounds],
  };
  const keys = [
    'bringUpS',
    'announceS',
    'withdrawS',
    'idleRssBytes',
    'peakRssBytes',
    'cpuS',
    'cpuTotalS',
    'bytesPerPath',
    'harnessCpuS',
  ] as const;
  for (const k of keys) {
    const m = median(rounds.map((r) => r[k]));
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}

const TARGET_ADDRESS = '127.0.0.2';
const MONITOR_ADDRESS = '127.0.0.3';
const TARGET_ASN = 65000;
const MONITOR_ASN_RS = 64999;
const HOLD_TIME = 9;
const BRING_UP_TIMEOUT_MS = 180_000;
/** After bring-up: at least this long, plus the target's own settle time (FRR's update-group
 *  coalesce timer), and until the target is quiet, before the first UPDATE. */
const SETTLE_MS = 1000;

let nextPort = 17600 + (process.pid % 100) * 20;
const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const log = (s: string) => process.stderr.write(`${s}\n`);

/** 127.0.1.1, 127.0.1.2, ... skipping .0 and .255. */
function testerAddress(i: number): string {
  const host = 1 + (i % 254);
  const net = 1 + Math.floor(i / 254);
  if (net > 255) throw new RangeError('too many testers for 127.0.x.y');
  return `127.0.${net}.${host}`;
}

function attributes(def: CaseDef, i: number, asNumber: number): PathAttributes {
  // Next hops from 198.18.0.0/15 (RFC 2544 benchmarking): FRR rejects 127/8 next hops as martian.
  const nextHop = intToIpv4(ipv4ToInt('198.18.0.0') + i + 1);
  return def.role === 'route-server'
    ? { origin: 'igp', asPath: [{ type: 'sequence', asns: [asn(asNumber)] }], nextHop }
    : { origin: 'igp', asPath: [], nextHop, localPref: 100 };
}

class PhaseError extends Error {
  constructor(
    message: string,
    readonly status: 'failed' | 'timeout',
  ) {
    super(message);
  }
}

/** Waits for every receiver to hold `count(peer)`; rejects on timeout or a lost session. */
function converge(
  receivers: readonly TestPeer[],
  count: (p: TestPeer) => number,
  timeoutS: number,
  lost: Promise<never>,
  what: string,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const behind = receivers.filter((r) => r.held !== count(r));
      const worst = behind.reduce<TestPeer | undefined>(
        (w, r) => (w === undefined || Math.abs(r.held - count(r)) > Math.abs(w.held - count(w)) ? r : w),
        undefined,
      );
      const detail =
        worst === undefined
          ? ''
          : `; ${behind.length} of ${receivers.length} receivers short, e.g. ${worst.name} holds ${worst.held.toLocaleString('en-US')} of ${count(worst).toLocaleString('en-US')}`;
      reject(new PhaseError(`${what}: did not converge in ${timeoutS} s${detail}`, 'timeout'));
    }, timeoutS * 1000);
  });
  const all = Promise.all(receivers.map((r) => r.whenHolding(count(r)))).then((ts) => Math.max(...ts));
  return Promise.race([all, timeout, lost]).finally(() => clearTimeout(timer));
}

async function runCase(target: BenchTarget, sc: ScaledCase, opts: Options): Promise<Row> {
  const def = sc.def;
  const row: Row = {
    case: sc.label,
    target: target.name,
    version: target.version() ?? target.name,
    status: 'ok',
    note: '',
    sessions: def.testers + 1,
    paths: sc.paths,
    expiries: 0,
    drops: 0,
  };
  const rs = def.role === 'route-server';
  const base = ipv4ToInt(def.base);
  const step = 2 ** (32 - def.prefixLen);
  const lists = Array.from({ length: def.testers }, (_, t) =>
    ipv4BlockFrom(base + t * sc.perTester * step, def.prefixLen, sc.perTester),
  );
  const index = PrefixIndex.of(lists);

  let rejectLost: (e: Error) => void = () => {};
  const lost = new Promise<never>((_, reject) => {
    rejectLost = reject;
  });
  lost.catch(() => {});
  let closing = false;
  const onDown = (p: TestPeer, why: string) => {
    if (p.expiries === 0) row.drops++;
    if (!closing) rejectLost(new PhaseError(`session ${p.name} lost: ${why}`, 'failed'));
  };

  const port = nextPort;
  nextPort += 2;
  const testers = lists.map((prefixes, t) => {
    const peerAsn = rs ? 65001 + t : TARGET_ASN;
    return new TestPeer({
      name: `tester ${t + 1} (${testerAddress(t)})`,
      localAddress: testerAddress(t),
      remoteAddress: TARGET_ADDRESS,
      remotePort: port,
      asn: peerAsn,
      holdTime: HOLD_TIME,
      announcements: [{ attributes: attributes(def, t, peerAsn), prefixes }],
      ...(def.fanout
        ? { count: { index, excludeFrom: t * sc.perTester, excludeTo: (t + 1) * sc.perTester } }
        : {}),
      onDown,
    });
  });
  const monitorAsn = rs ? MONITOR_ASN_RS : TARGET_ASN;
  const mon = new TestPeer({
    name: `monitor (${MONITOR_ADDRESS})`,
    localAddress: MONITOR_ADDRESS,
    remoteAddress: TARGET_ADDRESS,
    remotePort: port,
    asn: monitorAsn,
    holdTime: HOLD_TIME,
    count: { index },
    onDown,
  });
  const peers = [...testers, mon];
  const receivers = def.fanout ? peers : [mon];
  const peerSpecs: TargetPeer[] = [
    ...testers.map((p) => ({ address: p.options.localAddress, asn: p.options.asn, receive: def.fanout })),
    { address: MONITOR_ADDRESS, asn: monitorAsn, receive: true },
  ];

  let running: RunningTarget | undefined;
  const cpuStart = process.cpuUsage();
  try {
    running = await target.start({
      role: def.role,
      asn: TARGET_ASN,
      routerId: '10.0.0.2',
      address: TARGET_ADDRESS,
      port,
      holdTime: HOLD_TIME,
      peers: peerSpecs,
      keepDir: opts.keep,
    });
    for (const p of testers) p.prepare();
    gc();

    // Bring-up: every peer dials at once.
    const tUp = now();
    await Promise.race([
      Promise.all(peers.map((p) => p.connect(BRING_UP_TIMEOUT_MS))).catch((e: Error) => {
        throw new PhaseError(`bring-up: ${e.message}`, 'failed');
      }),
      lost,
    ]);
    row.bringUpS = (now() - tUp) / 1000;
    await sleep(SETTLE_MS + (target.settleMs?.(peers.length) ?? 0));
    const idle = await waitQuiet(running, { quietMs: 500, maxMs: 30_000 });
    row.idleRssBytes = idle.usage.rssBytes;
    const cpu0 = idle.usage.cpuSeconds;
    const harness0 = process.cpuUsage();

    // Announce.
    const sending = Promise.all(testers.map((p) => p.announce()));
    sending.catch(() => {});
    const tAnn = Math.min(...testers.map((p) => p.announceStartedAt));
    const annDone = await converge(receivers, (p) => p.expected, opts.timeoutS, lost, 'announce');
    await Promise.race([sending, lost]);
    row.announceS = (annDone - tAnn) / 1000;
    await waitQuiet(running, { quietMs: 500, maxMs: 60_000 });

    // Withdraw.
    const withdrawing = Promise.all(testers.map((p) => p.withdraw()));
    withdrawing.catch(() => {});
    const tWd = Math.min(...testers.map((p) => p.withdrawStartedAt));
    const wdDone = await converge(receivers, () => 0, opts.timeoutS, lost, 'withdraw');
    await Promise.race([withdrawing, lost]);
    row.withdrawS = (wdDone - tWd) / 1000;
    const end = await waitQuiet(running, { quietMs: 500, maxMs: 60_000 });
    row.cpuS = end.usage.cpuSeconds - cpu0;
    const h = process.cpuUsage(harness0);
    row.harnessCpuS = (h.user + h.system) / 1e6;
  } catch (e) {
    row.status = e instanceof PhaseError ? e.status : 'failed';
    row.note = (e as Error).message;
  } finally {
    if (running !== undefined && !running.exited) {
      const u = running.usage();
      row.peakRssBytes = u.hwmBytes;
      row.cpuTotalS = u.cpuSeconds;
      if (row.idleRssBytes !== undefined) {
        row.bytesPerPath = Math.max(0, u.hwmBytes - row.idleRssBytes) / sc.paths;
      }
    } else if (running?.exited === true) {
      row.status = 'failed';
      row.note ||= `target exited (log: ${running.logFile ?? '?'})`;
    }
    row.harnessCpuS ??= (() => {
      const h = process.cpuUsage(cpuStart);
      return (h.user + h.system) / 1e6;
    })();
    closing = true;
    const received = { updates: 0, announced: 0, withdrawn: 0, bytes: 0 };
    for (const p of peers) {
      row.expiries += p.expiries;
      received.updates += p.updatesIn;
      received.announced += p.announcedIn;
      received.withdrawn += p.withdrawnIn;
      received.bytes += p.bytesIn;
    }
    row.received = received;
    await Promise.all(peers.map((p) => p.close()));
    await running?.stop();
  }
  return row;
}

// ---------------------------------------------------------------------------------------------
// Output

const MiB = 1024 * 1024;
const fmtS = (s: number | undefined) =>
  s === undefined
    ? '-'
    : s < 0.1
      ? `${(s * 1000).toFixed(1)} ms`
      : s < 10
        ? `${s.toFixed(2)} s`
        : `${s.toFixed(1)} s`;
const fmtMiB = (b: number | undefined) =>
  b === undefined ? '-' : `${(b / MiB).toFixed(b < 10 * MiB ? 1 : 0)} MiB`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(a / b < 10 ? 2 : 1)}x`;

function table(rows: readonly Row[], baseline: string): string {
  const head = [
    'case',
    'target',
    'up',
    'announce',
    'withdraw',
    'peak RSS',
    'idle RSS',
    'CPU s',
    'B/path',
    'expiries',
    `ann / ${baseline}`,
    `wd / ${baseline}`,
    `RSS / ${baseline}`,
  ];
  const body = rows.map((r) => {
    const base = rows.find((b) => b.case === r.case && b.target === baseline && b.status === 'ok');
    const bad = r.status === 'timeout' || r.status === 'failed';
    return [
      r.case,
      r.target,
      fmtS(r.bringUpS),
      r.status === 'skipped' ? 'skipped' : r.announceS === undefined && bad ? r.status : fmtS(r.announceS),
      r.withdrawS === undefined && bad && r.announceS !== undefined ? r.status : fmtS(r.withdrawS),
      fmtMiB(r.peakRssBytes),
      fmtMiB(r.idleRssBytes),
      r.cpuS === undefined ? '-' : r.cpuS.toFixed(2),
      r.bytesPerPath === undefined ? '-' : r.bytesPerPath.toFixed(0),
      r.status === 'skipped' ? '-' : String(r.expiries),
      ratio(r.announceS, base?.announceS),
      ratio(r.withdrawS, base?.withdrawS),
      ratio(r.peakRssBytes, base?.peakRssBytes),
    ];
  });
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] as string).length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.port !== undefined) nextPort = opts.port;
  for (const n of opts.unknownTargets)
    log(`unknown target ${n}: known are ${TARGETS.map((t) => t.name).join(', ')}`);
  const rows: Row[] = [];
  const targets: BenchTarget[] = [];
  for (const t of opts.targets) {
    const why = t.unavailable();
    if (why === undefined) targets.push(t);
    else log(`skipping ${t.name}: ${why}`);
  }
  log(
    `bench:speaker: ${cpus().length} cores, Node ${process.version}, scale ${opts.scale}, ` +
      `timeout ${opts.timeoutS} s per phase; targets: ${targets.map((t) => t.version() ?? t.name).join(', ')}`,
  );
  for (const def of opts.cases) {
    const sc = scaleCase(def, opts.scale);
    for (const t of targets) {
      const slow = opts.slow ? undefined : t.slow?.(sc);
      if (slow !== undefined) {
        rows.push({
          case: sc.label,
          target: t.name,
          version: t.version() ?? t.name,
          status: 'skipped',
          note: `${slow}; --slow runs it`,
          sessions: def.testers + 1,
          paths: sc.paths,
          expiries: 0,
          drops: 0,
        });
        log(`${sc.label} ${t.name}: skipped (${slow})`);
        continue;
      }
      const rounds: Row[] = [];
      for (let round = 1; round <= opts.rounds; round++) {
        const tag = opts.rounds > 1 ? ` (round ${round} of ${opts.rounds})` : '';
        log(`${sc.label} ${t.name}${tag}: running...`);
        const r = await runCase(t, sc, opts);
        rounds.push(r);
        log(
          `${sc.label} ${t.name}${tag}: ${r.status}; up ${fmtS(r.bringUpS)}, announce ${fmtS(r.announceS)}, ` +
            `withdraw ${fmtS(r.withdrawS)}, peak ${fmtMiB(r.peakRssBytes)}, CPU ${r.cpuS?.toFixed(2) ?? '-'} s, ` +
            `harness CPU ${r.harnessCpuS?.toFixed(2) ?? '-'} s, expiries ${r.expiries}${r.note === '' ? '' : `; ${r.note}`}`,
        );
        gc();
        if (r.status !== 'ok') break; // a timeout would only repeat
      }
      rows.push(combine(rounds));
    }
  }

  const versions = targets.map((t) => `${t.name} = ${t.version() ?? '?'}`).join(', ');
  const baseNote =
    opts.baseline === 'bgp-ts'
      ? 'ratios compare to bgp-ts'
      : `ratios compare to ${opts.baseline} (bgp-ts is not among the targets)`;
  console.log(
    `\nbench:speaker, scale ${opts.scale}, ${opts.rounds > 1 ? `median of ${opts.rounds} rounds, ` : ''}hold time ${HOLD_TIME} s, loopback, ${cpus().length} cores, ` +
      `Node ${process.version}; ${versions}`,
  );
  console.log(
    `announce / withdraw: first UPDATE sent to every receiver holding all / none; ` +
      `CPU s: target, announce + withdraw; B/path: (peak - idle RSS) / paths; ${baseNote}\n`,
  );
  console.log(table(rows, opts.baseline));
  const notes = rows.filter((r) => r.note !== '' || r.harnessCpuS !== undefined);
  if (notes.length > 0) {
    console.log('');
    for (const r of notes) {
      const extra = [
        r.harnessCpuS === undefined ? '' : `harness CPU ${r.harnessCpuS.toFixed(2)} s`,
        r.cpuTotalS === undefined ? '' : `target CPU total ${r.cpuTotalS.toFixed(2)} s`,
        r.received === undefined
          ? ''
          : `received${r.rounds === undefined ? '' : ' (round 1)'} ${r.received.updates.toLocaleString('en-US')} UPDATEs, ` +
            `${r.received.announced.toLocaleString('en-US')} announced / ` +
            `${r.received.withdrawn.toLocaleString('en-US')} withdrawn prefixes, ${fmtMiB(r.received.bytes)}`,
        r.drops > 0 ? `${r.drops} sessions dropped` : '',
        r.rounds === undefined
          ? ''
          : `rounds: announce ${r.rounds.map((x) => fmtS(x.announceS)).join(', ')}; ` +
            `withdraw ${r.rounds.map((x) => fmtS(x.withdrawS)).join(', ')}`,
        r.note,
      ].filter((s) => s !== '');
      console.log(`${r.case} ${r.target}: ${extra.join('; ')}`);
    }
  }
  if (opts.json !== undefined) {
    writeFileSync(
      opts.json,
      JSON.stringify({ scale: opts.scale, node: process.version, cores: cpus().length, rows }, null, 2) +
        '\n',
    );
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
