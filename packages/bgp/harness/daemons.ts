// Reference BGP daemons started by hand for benchmarks and interop tests: BIRD 2, FRR's
// bgpd and GoBGP, each as a route server (eBGP, attributes passed on unchanged), a route
// reflector (iBGP, every peer a client) or a plain peer (`client`: a reflector's client, an
// eBGP router), optionally originating routes and with graceful restart, with a generated
// config in a temp directory, listening on one loopback address (IPv4 or IPv6) and a high
// port. Nothing here uses the packages' system services: each daemon runs in the
// foreground in its own process group, with its own control socket, and is killed when
// stopped or when this process exits; kill() and a start with `restarting` in the same
// directory make a crash and a graceful restart.
//
//   const d = await startDaemon('bird', { asn: 65000, routerId: '10.0.0.2', address: '127.0.0.2',
//     port: 17900, role: 'route-server', peers: [{ address: '127.0.1.1', asn: 65001 }] });
//   d.usage();           // { rssBytes, hwmBytes, cpuSeconds, pids } over the process tree
//   await d.sessions();  // [{ address: '127.0.1.1', state: 'Established', established: true }]
//   await d.routes('10.0.0.0/24'); // [{ from: '127.0.1.1', asPath: [65001], stale: false, ... }]
//   await d.stop();
//
// Debian packages: bird2, frr, gobgpd (apt-get install; never enable their services).
//
// Quirks met on loopback (BIRD 2.0.12, FRR 8.4.4, GoBGP 3.10.0):
// - BIRD listens with a backlog of 8: hundreds of peers dialling at once lose SYNs, and the
//   kernel retries them after 1, 3, 7, 15... s. Peers should re-dial after about a second.
// - BIRD wants `multihop` for eBGP peers on loopback addresses, and a `next hop address` on a
//   channel whose family differs from the session's ("Missing next hop address").
// - FRR rejects routes whose NEXT_HOP is in 127.0.0.0/8 as martian (NOTIFICATION 3/8): give
//   routes a next hop outside it, e.g. 198.18.0.0/15. eBGP on loopback needs
//   disable-connected-check.
// - FRR holds back the first advertisement to a new peer for its update-group coalesce time,
//   min(10 s, 1 s + 50 ms x configured peers): see daemonSettleMs. It also reflects a client's
//   own routes back to it (one encoding per update group; the client drops them by ORIGINATOR_ID).
// - GoBGP keeps no record of what it did not send: a peer whose export policy rejects
//   everything still gets a withdrawal of every route withdrawn, and it sends one prefix per
//   UPDATE. Its first dial (passive: false) comes about 8 s after start.
// - Over an IPv6 session, bgpd without zebra (-Z) puts NEXT_HOP 0.0.0.0 on IPv4 routes (it
//   knows no IPv4 address of its own); the harness keeps the route's own next hop instead.
//   GoBGP as a plain eBGP peer sends its IPv6 session address as the next hop of IPv4 routes
//   (RFC 8950 encoding) though the peer never offered the extended next hop capability.
// - GoBGP's originated routes come through its API after start; the peers stay
//   administratively down until they are in, or they would get End-of-RIB without them.

import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type DaemonKind = 'bird' | 'frr' | 'gobgp';
export const DAEMON_KINDS: readonly DaemonKind[] = ['bird', 'frr', 'gobgp'];

/**
 * `route-server`: eBGP; every peer is a route-server client (no own AS prepended, next hop
 * and MED kept). `route-reflector`: iBGP; every peer is a route-reflector client.
 * `client`: a plain peer, iBGP or eBGP by the ASNs (a route reflector's client, say): it
 * announces its `originate` routes and what its own rules let it pass on.
 */
export type DaemonRole = 'route-server' | 'route-reflector' | 'client';

export type Family = 'ipv4' | 'ipv6';

export interface DaemonPeer {
  /** The peer's address (its source address when it connects to us). */
  readonly address: string;
  readonly asn: number;
  /** Whether the daemon sends routes to this peer; false makes it import-only. Default true. */
  readonly receive?: boolean;
  /** The peer's listening port, used only when the daemon is not passive. Default 179. */
  readonly port?: number;
  /** TCP-MD5 key (RFC 2385); BIRD only. */
  readonly password?: string;
}

export interface DaemonConfig {
  readonly asn: number;
  readonly routerId: string;
  /** The address the daemon listens on and sources its sessions from: a loopback address. */
  readonly address: string;
  readonly port: number;
  readonly role: DaemonRole;
  readonly peers: readonly DaemonPeer[];
  /** Seconds; default 9. */
  readonly holdTime?: number;
  /** Seconds; default holdTime / 3. */
  readonly keepaliveTime?: number;
  /** Families configured on every session; default both. */
  readonly families?: readonly Family[];
  /** Route-reflector cluster ID; default the router ID. */
  readonly clusterId?: string;
  /**
   * Prefixes the daemon originates (BIRD: static blackhole routes; FRR: `network`; GoBGP:
   * `gobgp global rib add` once it is up), in either family.
   */
  readonly originate?: readonly string[];
  /**
   * NEXT_HOP of the originated routes per family; default the daemon's own choice (its
   * session address, or for the other family BIRD's `next hop address`). FRR refuses 127/8
   * next hops from its peers, so give one outside it when an FRR may receive the route.
   */
  readonly originateNextHop?: { readonly ipv4?: string; readonly ipv6?: string };
  /**
   * RFC 4724 graceful restart with every peer, with this Restart Time (seconds): the
   * daemon keeps a peer's routes while it restarts (helper) and advertises the capability.
   */
  readonly gracefulRestart?: { readonly restartTime: number };
  /**
   * Start as a daemon that has just restarted gracefully: the Restart State (R) bit and the
   * forwarding-preserved (F) bits in its OPENs (BIRD `-R`, GoBGP `-r`; FRR 8.4 sets both
   * from its first start on with graceful restart configured, so this changes nothing).
   */
  readonly restarting?: boolean;
  /** Wait for the peers to connect (default true); false makes the daemon dial them. */
  readonly passive?: boolean;
  /** Working directory for config, sockets and log; default a new temp directory. */
  readonly dir?: string;
  /** GoBGP's gRPC port on 127.0.0.1; default port + 1000. */
  readonly apiPort?: number;
  /** Milliseconds to wait for the daemon to listen and answer its control socket; default 20000. */
  readonly readyTimeoutMs?: number;
  /** Keep the working directory (config, log) after stop; default false. */
  readonly keepDir?: boolean;
}

export interface ProcessUsage {
  /** Current resident set (VmRSS), summed over the daemon's process tree. */
  readonly rssBytes: number;
  /** Peak resident set (VmHWM), summed over the process tree. */
  readonly hwmBytes: number;
  /** User + system CPU seconds of the process tree (threads included, exited children not). */
  readonly cpuSeconds: number;
  readonly pids: readonly number[];
}

export interface SessionState {
  readonly address: string;
  /** The daemon's own word for the state ("Established", "Active", "idle", ...). */
  readonly state: string;
  readonly established: boolean;
}

/** One path of a prefix in the daemon's main table, as its CLI shows it. */
export interface DaemonRoute {
  readonly prefix: string;
  /** The peer it came from; undefined for a route the daemon originates. */
  readonly from: string | undefined;
  readonly best: boolean;
  /** The first next hop (an IPv6 global one where a link-local one follows). */
  readonly nextHop: string | undefined;
  readonly asPath: readonly number[];
  /** "65001:7" */
  readonly communities: readonly string[];
  /** "65001:1:2" */
  readonly largeCommunities: readonly string[];
  readonly originatorId: string | undefined;
  readonly clusterList: readonly string[];
  /** Kept stale for a restarting peer (RFC 4724); undefined where the CLI does not say (BIRD). */
  readonly stale: boolean | undefined;
}

export interface Daemon {
  readonly kind: DaemonKind;
  /** For example "BIRD 2.0.12". */
  readonly version: string;
  readonly pid: number;
  readonly address: string;
  readonly port: number;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly config: DaemonConfig;
  /** Whether the process has exited (by itself or through stop()). */
  readonly exited: boolean;
  usage(): ProcessUsage;
  /** Session states from the daemon's own CLI (birdc, vtysh, gobgp). */
  sessions(): Promise<SessionState[]>;
  /**
   * The paths of one prefix in the daemon's main table (BIRD master4/6, FRR's default
   * table, GoBGP's global RIB; a GoBGP route server keeps its clients' routes elsewhere),
   * from its CLI; [] when it has none.
   */
  routes(prefix: string): Promise<DaemonRoute[]>;
  /** Runs one command of the daemon's CLI and returns its output. */
  cli(command: string): Promise<string>;
  /** SIGTERM, then SIGKILL after 5 s; removes the working directory unless keepDir. */
  stop(): Promise<void>;
  /**
   * SIGKILL, as a crash: no NOTIFICATION, sessions just close. The working directory stays
   * (for a restart with `startDaemon(kind, { ...d.config, dir: d.dir, restarting: true })`);
   * a later stop() still removes it.
   */
  kill(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Binaries and versions

const BIN = {
  bird: process.env['BIRD_BIN'] ?? 'bird',
  birdc: process.env['BIRDC_BIN'] ?? 'birdc',
  bgpd: process.env['BGPD_BIN'] ?? '/usr/lib/frr/bgpd',
  vtysh: process.env['VTYSH_BIN'] ?? 'vtysh',
  gobgpd: process.env['GOBGPD_BIN'] ?? 'gobgpd',
  gobgp: process.env['GOBGP_BIN'] ?? 'gobgp',
} as const;

const PACKAGE: Record<DaemonKind, string> = { bird: 'bird2', frr: 'frr', gobgp: 'gobgpd' };

/** stdout and stderr of a short command (bird prints its version on stderr), or undefined if absent. */
function versionOutput(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error !== undefined) return undefined;
  return `${r.stdout}${r.stderr}`;
}

const versions = new Map<DaemonKind, string | undefined>();

/** "BIRD 2.0.12", "FRR bgpd 8.4.4", "GoBGP 3.10.0", or undefined when not installed. */
export function daemonVersion(kind: DaemonKind): string | undefined {
  if (versions.has(kind)) return versions.get(kind);
  let v: string | undefined;
  const last = (s: string | undefined) => s?.trim().split('\n')[0]?.trim().split(/\s+/).pop();
  switch (kind) {
    case 'bird': {
      const n = last(versionOutput(BIN.bird, ['--version']));
      v = n === undefined ? undefined : `BIRD ${n}`;
      break;
    }
    case 'frr': {
      const n = existsSync(BIN.bgpd) ? last(versionOutput(BIN.bgpd, ['--version'])) : undefined;
      v = n === undefined ? undefined : `FRR bgpd ${n}`;
      break;
    }
    case 'gobgp': {
      const n = last(versionOutput(BIN.gobgpd, ['--version']));
      v = n === undefined ? undefined : `GoBGP ${n}`;
      break;
    }
  }
  versions.set(kind, v);
  return v;
}

/** Why the daemon cannot be started here, or undefined if it can. */
export function daemonUnavailable(kind: DaemonKind): string | undefined {
  return daemonVersion(kind) === undefined
    ? `${kind} is not installed (Debian package ${PACKAGE[kind]})`
    : undefined;
}

// ---------------------------------------------------------------------------------------------
// /proc

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

interface ProcStat {
  readonly ppid: number;
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may contain spaces) in parentheses.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
}

function statusKb(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s);
  return m === null ? 0 : Number(m[1]);
}

/** The process and its descendants (children found through /proc/<pid>/stat's ppid). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const n of names) {
    const p = Number(n);
    if (!Number.isInteger(p) || p <= 0) continue;
    const st = readStat(p);
    if (st === undefined) continue;
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [p]);
    else list.push(p);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0 && out.length < 10_000) {
    const p = stack.pop() as number;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** RSS, peak RSS and CPU seconds of a process and its descendants (or of the given pids). */
export function processUsage(pid: number, tree: readonly number[] = processTree(pid)): ProcessUsage {
  const pids = tree.filter((p) => readStat(p) !== undefined);
  let rss = 0;
  let hwm = 0;
  let ticks = 0;
  for (const p of pids) {
    rss += statusKb(p, 'VmRSS');
    hwm += statusKb(p, 'VmHWM');
    ticks += readStat(p)?.ticks ?? 0;
  }
  return { rssBytes: rss * 1024, hwmBytes: hwm * 1024, cpuSeconds: ticks / ticksPerSecond(), pids };
}

/** Whether a TCP socket listens on address:port (IPv4 or IPv6 literal), from /proc/net/tcp*. */
export function isListening(address: string, port: number): boolean {
  const v6 = address.includes(':');
  let text: string;
  try {
    text = readFileSync(v6 ? '/proc/net/tcp6' : '/proc/net/tcp', 'utf8');
  } catch {
    return false;
  }
  const want = `${procAddress(address)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const any = `${v6 ? '0'.repeat(32) : '00000000'}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && (f[1] === want || f[1] === any)) return true;
  }
  return false;
}

/** The kernel's hex form of an address in /proc/net/tcp (each 32-bit word little-endian). */
function procAddress(address: string): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  if (!address.includes(':')) {
    const b = address.split('.').map(Number);
    return [b[3], b[2], b[1], b[0]].map((x) => hex(x ?? 0)).join('');
  }
  const words = expandIpv6(address);
  let out = '';
  for (let i = 0; i < 8; i += 2) {
    const b = [words[i]! >> 8, words[i]! & 0xff, words[i + 1]! >> 8, words[i + 1]! & 0xff];
    out += [b[3], b[2], b[1], b[0]].map((x) => hex(x ?? 0)).join('');
  }
  return out;
}

function expandIpv6(a: string): number[] {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const t = tail === undefined || tail === '' ? [] : tail.split(':').map((x) => parseInt(x, 16));
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

// ---------------------------------------------------------------------------------------------
// Process lifecycle: every daemon we start is killed when this process exits.

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const c of live) killGroup(c, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const c of live) killGroup(c, 'SIGKILL');
      live.clear();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], timeoutMs = 15000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}${stdout}`.trim()));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// Config generation

function defaults(c: DaemonConfig) {
  const holdTime = c.holdTime ?? 9;
  return {
    holdTime,
    keepaliveTime: c.keepaliveTime ?? Math.max(1, Math.floor(holdTime / 3)),
    families: c.families ?? (['ipv4', 'ipv6'] as const),
    clusterId: c.clusterId ?? c.routerId,
    passive: c.passive ?? true,
  };
}

/** The prefixes of one family. */
const ofFamily = (prefixes: readonly string[] | undefined, f: Family) =>
  (prefixes ?? []).filter((p) => p.includes(':') === (f === 'ipv6'));

/** BIRD 2: one `protocol bgp` per peer from two templates (receiving, import-only). */
export function birdConfig(c: DaemonConfig): string {
  const d = defaults(c);
  const v6 = c.address.includes(':');
  const exportAll = (f: Family) => {
    // The originated routes' next hop, set on the way out (BIRD's own choice otherwise).
    const nh = c.originateNextHop?.[f];
    // Interface routes (`protocol direct`, there for next-hop resolution) stay home.
    const setNh = nh === undefined ? '' : ` if source = RTS_STATIC then bgp_next_hop = ${nh};`;
    return `filter { if source = RTS_DEVICE then reject;${setNh} accept; }`;
  };
  const template = (name: string, exp: 'all' | 'none') => [
    `template bgp ${name} {`,
    `  local ${c.address} port ${c.port} as ${c.asn};`,
    `  strict bind on;`,
    ...(d.passive ? ['  passive on;'] : ['  connect delay time 1;', '  connect retry time 1;']),
    // BIRD treats a peer that is not on a directly connected network as an error for
    // eBGP unless multihop; loopback addresses are not "directly connected" for it.
    ...(c.role === 'route-server'
      ? ['  multihop;', '  rs client;']
      : c.role === 'route-reflector'
        ? ['  rr client;', `  rr cluster id ${d.clusterId};`]
        : ['  multihop;']),
    ...(c.gracefulRestart === undefined
      ? []
      : ['  graceful restart on;', `  graceful restart time ${c.gracefulRestart.restartTime};`]),
    `  hold time ${d.holdTime};`,
    `  keepalive time ${d.keepaliveTime};`,
    // A channel of the other family than the session needs a next hop address of its
    // own, or BIRD warns "Missing next hop address" (documentation addresses: routes are
    // only passed on, never installed).
    ...d.families.map((f) => {
      const nh =
        f === 'ipv6' && !v6
          ? ' next hop address 2001:db8::1;'
          : f === 'ipv4' && v6
            ? ' next hop address 192.0.2.1;'
            : '';
      return `  ${f} { import all; export ${exp === 'all' ? exportAll(f) : exp};${nh} };`;
    }),
    `}`,
  ];
  const lines = [
    `# Generated by bgp-ts harness/daemons.ts: ${c.role} for ${c.peers.length} peers.`,
    `log stderr { info, remote, warning, error, auth, fatal, bug };`,
    `router id ${c.routerId};`,
    `protocol device { }`,
    // 127.0.0.0/8 and ::1 as device routes, so next hops of loopback peers resolve
    // (BGP's default for multihop eBGP and iBGP is recursive resolution).
    `protocol direct { ${d.families.map((f) => `${f};`).join(' ')} interface "lo"; }`,
    ...template('peer_rx', 'all'),
    ...template('peer_in', 'none'),
    // Originated routes: blackholes (nothing is installed anywhere), exported as above.
    ...d.families.flatMap((f) => {
      const prefixes = ofFamily(c.originate, f);
      if (prefixes.length === 0) return [];
      return [
        `protocol static origin_${f} {`,
        `  ${f};`,
        ...prefixes.map((p) => `  route ${p} blackhole;`),
        `}`,
      ];
    }),
  ];
  c.peers.forEach((p, i) => {
    const port = d.passive ? '' : ` port ${p.port ?? 179}`;
    const md5 = p.password === undefined ? '' : ` password ${JSON.stringify(p.password)};`;
    lines.push(
      `protocol bgp p${i + 1} from ${p.receive === false ? 'peer_in' : 'peer_rx'} { neighbor ${p.address}${port} as ${p.asn};${md5} }`,
    );
  });
  return lines.join('\n') + '\n';
}

/** FRR bgpd: two peer groups (receiving, import-only) sharing one outbound policy each. */
export function frrConfig(c: DaemonConfig): string {
  const d = defaults(c);
  const rs = c.role === 'route-server';
  const rr = c.role === 'route-reflector';
  const v6 = c.address.includes(':');
  const nh = c.originateNextHop;
  const groups = [
    ['RX', c.peers.filter((p) => p.receive !== false)],
    ['IN', c.peers.filter((p) => p.receive === false)],
  ] as const;
  const lines = [
    `! Generated by bgp-ts harness/daemons.ts: ${c.role} for ${c.peers.length} peers.`,
    `frr defaults traditional`,
    `hostname bench-${c.port}`,
    `log stdout informational`,
    `!`,
    `route-map DENY deny 10`,
    `!`,
    // IPv4 routes over an IPv6 session: bgpd without zebra knows no IPv4 address of its own
    // to put in NEXT_HOP and sends 0.0.0.0 (which peers drop); keep the route's own.
    ...(v6 ? [`route-map V4_OVER_V6 permit 10`, ` set ip next-hop unchanged`, `!`] : []),
    // The originated routes' next hops (`network ... route-map`).
    ...(nh?.ipv4 === undefined
      ? []
      : [`route-map ORIGIN_ipv4 permit 10`, ` set ip next-hop ${nh.ipv4}`, `!`]),
    ...(nh?.ipv6 === undefined
      ? []
      : [`route-map ORIGIN_ipv6 permit 10`, ` set ipv6 next-hop global ${nh.ipv6}`, `!`]),
    `router bgp ${c.asn}`,
    ` bgp router-id ${c.routerId}`,
    ` no bgp ebgp-requires-policy`,
    ` no bgp default ipv4-unicast`,
    ` no bgp network import-check`,
    ` bgp log-neighbor-changes`,
    ...(rr ? [` bgp cluster-id ${d.clusterId}`] : []),
    // Full graceful-restart mode (not only helper), with the F bit (preserve-fw-state).
    ...(c.gracefulRestart === undefined
      ? []
      : [
          ` bgp graceful-restart`,
          ` bgp graceful-restart restart-time ${c.gracefulRestart.restartTime}`,
          ` bgp graceful-restart preserve-fw-state`,
        ]),
  ];
  for (const [g, members] of groups) {
    if (members.length === 0) continue;
    lines.push(
      ` neighbor ${g} peer-group`,
      ...(d.passive ? [` neighbor ${g} passive`] : [` neighbor ${g} timers connect 1`]),
      ` neighbor ${g} timers ${d.keepaliveTime} ${d.holdTime}`,
      ` neighbor ${g} advertisement-interval 0`,
      // eBGP peers on loopback addresses are not on a connected network either.
      ...(rr ? [] : [` neighbor ${g} disable-connected-check`]),
      ` neighbor ${g} update-source ${c.address}`,
    );
    for (const p of members) {
      lines.push(` neighbor ${p.address} remote-as ${p.asn}`, ` neighbor ${p.address} peer-group ${g}`);
      if (!d.passive) lines.push(` neighbor ${p.address} port ${p.port ?? 179}`);
    }
  }
  for (const f of d.families) {
    lines.push(` address-family ${f} unicast`);
    for (const [g, members] of groups) {
      if (members.length === 0) continue;
      lines.push(`  neighbor ${g} activate`);
      if (c.role !== 'client') {
        lines.push(`  neighbor ${g} ${rs ? 'route-server-client' : 'route-reflector-client'}`);
      }
      if (g === 'IN') lines.push(`  neighbor ${g} route-map DENY out`);
      else if (v6 && f === 'ipv4') lines.push(`  neighbor ${g} route-map V4_OVER_V6 out`);
    }
    for (const p of ofFamily(c.originate, f)) {
      lines.push(`  network ${p}${nh?.[f] === undefined ? '' : ` route-map ORIGIN_${f}`}`);
    }
    lines.push(` exit-address-family`);
  }
  lines.push(`!`);
  return lines.join('\n') + '\n';
}

/** GoBGP (TOML): one [[neighbors]] per peer. */
export function gobgpConfig(c: DaemonConfig): string {
  const d = defaults(c);
  const originates = (c.originate ?? []).length > 0;
  const rs = c.role === 'route-server';
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    `# Generated by bgp-ts harness/daemons.ts: ${c.role} for ${c.peers.length} peers.`,
    `[global.config]`,
    `  as = ${c.asn}`,
    `  router-id = ${q(c.routerId)}`,
    `  port = ${c.port}`,
    `  local-address-list = [${q(c.address)}]`,
  ];
  for (const p of c.peers) {
    lines.push(
      ``,
      `[[neighbors]]`,
      `  [neighbors.config]`,
      `    neighbor-address = ${q(p.address)}`,
      `    peer-as = ${p.asn}`,
      // Originated routes go in through the API once gobgpd is up: until then the peers
      // stay down, or they would get an End-of-RIB without them (enabled in afterReady).
      ...(originates ? [`    admin-down = true`] : []),
      `  [neighbors.timers.config]`,
      `    hold-time = ${d.holdTime}`,
      `    keepalive-interval = ${d.keepaliveTime}`,
      `    connect-retry = 1`,
      `  [neighbors.transport.config]`,
      `    local-address = ${q(c.address)}`,
      ...(d.passive ? [`    passive-mode = true`] : [`    remote-port = ${p.port ?? 179}`]),
      ...(rs
        ? [`  [neighbors.route-server.config]`, `    route-server-client = true`]
        : c.role === 'route-reflector'
          ? [
              `  [neighbors.route-reflector.config]`,
              `    route-reflector-client = true`,
              `    route-reflector-cluster-id = ${q(d.clusterId)}`,
            ]
          : []),
      ...(c.gracefulRestart === undefined
        ? []
        : [
            `  [neighbors.graceful-restart.config]`,
            `    enabled = true`,
            `    restart-time = ${c.gracefulRestart.restartTime}`,
          ]),
      ...(p.receive === false
        ? [`  [neighbors.apply-policy.config]`, `    default-export-policy = "reject-route"`]
        : []),
    );
    for (const f of d.families) {
      lines.push(
        `  [[neighbors.afi-safis]]`,
        `    [neighbors.afi-safis.config]`,
        `      afi-safi-name = "${f}-unicast"`,
        // GoBGP lists a family in its capability only with this.
        ...(c.gracefulRestart === undefined
          ? []
          : [`    [neighbors.afi-safis.mp-graceful-restart.config]`, `      enabled = true`]),
      );
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Starting

interface Launch {
  readonly configFile: string;
  readonly config: string;
  readonly cmd: string;
  readonly args: string[];
  /** Resolves once the control interface answers. */
  readonly ready: () => Promise<unknown>;
  readonly cli: (command: string) => Promise<string>;
  readonly sessions: () => Promise<SessionState[]>;
  readonly routes: (prefix: string) => Promise<DaemonRoute[]>;
  /** Runs once the daemon is ready (GoBGP's originated routes go in through its API). */
  readonly afterReady?: () => Promise<unknown>;
}

function birdLaunch(c: DaemonConfig, dir: string): Launch {
  const configFile = join(dir, 'bird.conf');
  const ctl = join(dir, 'bird.ctl');
  const cli = (command: string) => run(BIN.birdc, ['-s', ctl, command]);
  const byName = new Map(c.peers.map((p, i) => [`p${i + 1}`, p.address]));
  return {
    configFile,
    config: birdConfig(c),
    cmd: BIN.bird,
    args: [
      '-f',
      '-c',
      configFile,
      '-s',
      ctl,
      '-P',
      join(dir, 'bird.pid'),
      ...(c.restarting === true ? ['-R'] : []),
    ],
    ready: () => cli('show status'),
    cli,
    sessions: async () => {
      const out = await cli('show protocols');
      const res: SessionState[] = [];
      for (const line of out.split('\n')) {
        const f = line.trim().split(/\s+/);
        const address = byName.get(f[0] ?? '');
        if (address === undefined || f[1] !== 'BGP') continue;
        const state = f.slice(5).join(' ') || (f[3] ?? '');
        res.push({ address, state, established: state.startsWith('Established') });
      }
      return res;
    },
    routes: async (prefix) => {
      let out: string;
      try {
        out = await cli(`show route ${prefix} all`);
      } catch (e) {
        // birdc exits non-zero on "Network not found".
        if (/Network not found/.test((e as Error).message)) return [];
        throw e;
      }
      return parseBirdRoutes(out, prefix, byName);
    },
  };
}

/** `show route PREFIX all`: a line per path ("PREFIX  unreachable [p1 12:00:00 from ADDR] * ..."), then its attributes indented by a tab. */
export function parseBirdRoutes(
  out: string,
  prefix: string,
  byName: ReadonlyMap<string, string>,
): DaemonRoute[] {
  const res: DaemonRoute[] = [];
  let cur: { -readonly [K in keyof DaemonRoute]: DaemonRoute[K] } | undefined;
  const pairs = (v: string) =>
    [...v.matchAll(/\(([^)]*)\)/g)].map((m) =>
      m[1]!
        .split(',')
        .map((x) => x.trim())
        .join(':'),
    );
  for (const line of out.split('\n')) {
    const head = /^(\S+)?\s+\S+.*?\[(\S+)[^\]]*?(?: from (\S+))?\](\s+\*)?/.exec(line);
    if (!line.startsWith('\t') && head !== null && !line.startsWith('Table ')) {
      if (cur !== undefined) res.push(cur);
      cur = {
        prefix,
        from: head[3] ?? byName.get(head[2] ?? ''),
        best: head[4] !== undefined,
        nextHop: undefined,
        asPath: [],
        communities: [],
        largeCommunities: [],
        originatorId: undefined,
        clusterList: [],
        stale: undefined,
      };
      continue;
    }
    const m = /^\t(BGP\.\w+): ?(.*)$/.exec(line);
    if (cur === undefined || m === null) continue;
    const v = (m[2] ?? '').trim();
    switch (m[1]) {
      case 'BGP.next_hop':
        cur.nextHop = v.split(/\s+/)[0];
        break;
      case 'BGP.as_path':
        cur.asPath =
          v === ''
            ? []
            : v
                .split(/\s+/)
                .filter((x) => /^\d+$/.test(x))
                .map(Number);
        break;
      case 'BGP.community':
        cur.communities = pairs(v);
        break;
      case 'BGP.large_community':
        cur.largeCommunities = pairs(v);
        break;
      case 'BGP.originator_id':
        cur.originatorId = v;
        break;
      case 'BGP.cluster_list':
        cur.clusterList = v.split(/\s+/).filter((x) => x !== '');
        break;
      default:
        break; // other attributes are not read
    }
  }
  if (cur !== undefined) res.push(cur);
  return res;
}

function frrLaunch(c: DaemonConfig, dir: string): Launch {
  const configFile = join(dir, 'bgpd.conf');
  const cli = (command: string) => run(BIN.vtysh, ['--vty_socket', dir, '-d', 'bgpd', '-c', command]);
  return {
    configFile,
    config: frrConfig(c),
    cmd: BIN.bgpd,
    // -Z: no zebra (nothing installed in the kernel), -S: no user switch, -P 0: no vty
    // TCP port; -l / -p: listen only on our address and port.
    args: [
      '-Z',
      '-S',
      '-P',
      '0',
      '-l',
      c.address,
      '-p',
      String(c.port),
      '-f',
      configFile,
      '--vty_socket',
      dir,
      '-i',
      join(dir, 'bgpd.pid'),
    ],
    ready: () => cli('show version'),
    cli,
    sessions: async () => {
      const out = await cli('show bgp neighbors json');
      const j = JSON.parse(out) as Record<string, { bgpState?: string }>;
      return Object.entries(j)
        .filter(([, v]) => typeof v === 'object' && v.bgpState !== undefined)
        .map(([address, v]) => ({
          address,
          state: v.bgpState as string,
          established: v.bgpState === 'Established',
        }));
    },
    routes: async (prefix) => {
      const family = prefix.includes(':') ? 'ipv6' : 'ipv4';
      const j = JSON.parse(await cli(`show bgp ${family} unicast ${prefix} json`)) as {
        paths?: {
          aspath?: { segments?: { list?: number[] }[] };
          community?: { string?: string };
          largeCommunity?: { string?: string };
          originatorId?: string;
          clusterList?: { list?: string[] };
          stale?: boolean;
          bestpath?: { overall?: boolean };
          nexthops?: { ip?: string; scope?: string }[];
          peer?: { peerId?: string };
          sourced?: boolean;
        }[];
      };
      return (j.paths ?? []).map((p) => ({
        prefix,
        from: p.sourced === true ? undefined : p.peer?.peerId,
        best: p.bestpath?.overall === true,
        nextHop: (p.nexthops ?? []).find((n) => n.scope !== 'link-local')?.ip,
        asPath: (p.aspath?.segments ?? []).flatMap((s) => s.list ?? []),
        communities: (p.community?.string ?? '').split(' ').filter((x) => x !== ''),
        largeCommunities: (p.largeCommunity?.string ?? '').split(' ').filter((x) => x !== ''),
        originatorId: p.originatorId,
        clusterList: p.clusterList?.list ?? [],
        stale: p.stale === true,
      }));
    },
  };
}

function gobgpLaunch(c: DaemonConfig, dir: string): Launch {
  const configFile = join(dir, 'gobgpd.toml');
  const api = c.apiPort ?? c.port + 1000;
  const base = ['-u', '127.0.0.1', '-p', String(api)];
  const cli = (command: string) => run(BIN.gobgp, [...base, ...command.split(/\s+/).filter((s) => s !== '')]);
  return {
    configFile,
    config: gobgpConfig(c),
    cmd: BIN.gobgpd,
    args: [
      '-f',
      configFile,
      '-t',
      'toml',
      '-p',
      '-l',
      'info',
      '--api-hosts',
      `127.0.0.1:${api}`,
      '--pprof-disable',
      ...(c.restarting === true ? ['-r'] : []),
    ],
    ready: () => cli('global'),
    afterReady: async () => {
      for (const f of ['ipv4', 'ipv6'] as const) {
        const nh = c.originateNextHop?.[f];
        for (const p of ofFamily(c.originate, f)) {
          await cli(`global rib add -a ${f} ${p}${nh === undefined ? '' : ` nexthop ${nh}`}`);
        }
      }
      if ((c.originate ?? []).length > 0) for (const p of c.peers) await cli(`neighbor ${p.address} enable`);
    },
    cli,
    sessions: async () => {
      const out = await cli('neighbor -j');
      const j = JSON.parse(out) as {
        conf?: { neighbor_address?: string };
        state?: { neighbor_address?: string; session_state?: string | number };
      }[];
      return j.map((n) => {
        const raw = n.state?.session_state;
        // GoBGP's API enum: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.
        const state =
          typeof raw === 'number'
            ? (['unknown', 'idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'][raw] ??
              String(raw))
            : String(raw ?? 'unknown').toLowerCase();
        return {
          address: n.conf?.neighbor_address ?? n.state?.neighbor_address ?? '?',
          state,
          established: state === 'established',
        };
      });
    },
    routes: async (prefix) => {
      const family = prefix.includes(':') ? 'ipv6' : 'ipv4';
      const j = JSON.parse(await cli(`global rib -a ${family} ${prefix} -j`)) as Record<
        string,
        {
          best?: boolean;
          stale?: boolean;
          'neighbor-ip'?: string;
          attrs?: {
            type: number;
            nexthop?: string;
            value?: unknown;
            communities?: number[];
            as_paths?: { asns?: number[] }[];
          }[];
        }[]
      >;
      return (j[prefix] ?? []).map((p) => {
        const attr = (t: number) => p.attrs?.find((a) => a.type === t);
        const large = (attr(32)?.value ?? []) as { ASN: number; LocalData1: number; LocalData2: number }[];
        const from = p['neighbor-ip'];
        return {
          prefix,
          from: from === undefined || from === '<nil>' ? undefined : from,
          best: p.best === true,
          nextHop: (attr(14) ?? attr(3))?.nexthop,
          asPath: (attr(2)?.as_paths ?? []).flatMap((s) => s.asns ?? []),
          communities: (attr(8)?.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`),
          largeCommunities: large.map((l) => `${l.ASN}:${l.LocalData1}:${l.LocalData2}`),
          originatorId: attr(9)?.value as string | undefined,
          clusterList: (attr(10)?.value ?? []) as string[],
          stale: p.stale === true,
        };
      });
    },
  };
}

/** Starts a daemon with a generated config; resolves once it listens and its CLI answers. */
export async function startDaemon(kind: DaemonKind, config: DaemonConfig): Promise<Daemon> {
  const why = daemonUnavailable(kind);
  if (why !== undefined) throw new Error(why);
  installExitHooks();
  const dir = config.dir ?? (await mkdtemp(join(tmpdir(), `bgpts-${kind}-`)));
  const launch =
    kind === 'bird'
      ? birdLaunch(config, dir)
      : kind === 'frr'
        ? frrLaunch(config, dir)
        : gobgpLaunch(config, dir);
  await writeFile(launch.configFile, launch.config);
  const logFile = join(dir, `${kind}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(launch.cmd, launch.args, {
    cwd: dir,
    stdio: ['ignore', fd, fd],
    detached: true, // its own process group: stop() signals the whole group
  });
  closeSync(fd);
  live.add(child);
  let exited = false;
  let exitInfo = '';
  const exitP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitInfo = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      live.delete(child);
      resolve();
    });
    child.once('error', (e) => {
      exited = true;
      exitInfo = e.message;
      live.delete(child);
      resolve();
    });
  });
  const pid = child.pid ?? -1;

  const kill = async () => {
    if (!exited) {
      killGroup(child, 'SIGKILL');
      await Promise.race([exitP, sleep(5000)]);
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      killGroup(child, 'SIGTERM');
      await Promise.race([exitP, sleep(5000)]);
      if (!exited) {
        killGroup(child, 'SIGKILL');
        await Promise.race([exitP, sleep(2000)]);
      }
    } else {
      killGroup(child, 'SIGKILL'); // any child it left behind
    }
    if (config.keepDir !== true && config.dir === undefined) {
      await rm(dir, { recursive: true, force: true });
    }
  };

  // Ready: listening on address:port and the control interface answers.
  const deadline = Date.now() + (config.readyTimeoutMs ?? 20000);
  let lastError = '';
  for (;;) {
    if (exited) {
      const log = await tail(logFile);
      await stop();
      throw new Error(`${kind} exited during start-up (${exitInfo}); log ${logFile}:\n${log}`);
    }
    if (isListening(config.address, config.port)) {
      try {
        await launch.ready();
        await launch.afterReady?.();
        break;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    if (Date.now() > deadline) {
      const log = await tail(logFile);
      await stop();
      throw new Error(
        `${kind} not ready after ${config.readyTimeoutMs ?? 20000} ms (${lastError || `not listening on ${config.address}:${config.port}`}); log:\n${log}`,
      );
    }
    await sleep(50);
  }

  let tree: number[] = [pid];
  let treeAt = 0;
  return {
    kind,
    version: daemonVersion(kind) ?? kind,
    pid,
    address: config.address,
    port: config.port,
    dir,
    configFile: launch.configFile,
    logFile,
    config,
    get exited() {
      return exited;
    },
    usage: () => {
      // The process tree is looked up at most every 2 s: a walk of /proc costs milliseconds.
      if (Date.now() - treeAt > 2000) {
        tree = processTree(pid);
        treeAt = Date.now();
      }
      return processUsage(pid, tree);
    },
    sessions: launch.sessions,
    routes: launch.routes,
    cli: launch.cli,
    stop,
    kill,
  };
}

/**
 * How long after its last session came up the daemon may still hold back advertisements to
 * new peers, in milliseconds: FRR's update-group coalesce timer is
 * min(10 s, 1 s + 50 ms x configured peers) (bgpd/bgp_updgrp.h); BIRD and GoBGP have none.
 */
export function daemonSettleMs(kind: DaemonKind, peers: number): number {
  return kind === 'frr' ? Math.min(10_000, 1000 + 50 * peers) : 0;
}

export const startBird = (config: DaemonConfig): Promise<Daemon> => startDaemon('bird', config);
export const startFrr = (config: DaemonConfig): Promise<Daemon> => startDaemon('frr', config);
export const startGobgp = (config: DaemonConfig): Promise<Daemon> => startDaemon('gobgp', config);

/**
 * Polls the daemon's CPU time until it stays flat: less than `busyFraction` of one core over
 * `quietMs` (default 2% over 500 ms), or `maxMs` passes. Returns the usage at that point and
 * whether it went quiet.
 */
export async function waitQuiet(
  d: { usage(): ProcessUsage },
  opts: { quietMs?: number; maxMs?: number; busyFraction?: number } = {},
): Promise<{ usage: ProcessUsage; quiet: boolean }> {
  const quietMs = opts.quietMs ?? 500;
  const maxMs = opts.maxMs ?? 30000;
  const busy = opts.busyFraction ?? 0.02;
  const start = Date.now();
  const samples: { t: number; cpu: number }[] = [];
  for (;;) {
    const u = d.usage();
    const t = Date.now();
    samples.push({ t, cpu: u.cpuSeconds });
    while (samples.length > 1 && t - (samples[1] as { t: number }).t >= quietMs) samples.shift();
    const first = samples[0] as { t: number; cpu: number };
    if (t - first.t >= quietMs && u.cpuSeconds - first.cpu <= (busy * (t - first.t)) / 1000) {
      return { usage: u, quiet: true };
    }
    if (t - start > maxMs) return { usage: u, quiet: false };
    await sleep(50);
  }
}
