// Real BIRD 2 and FRR bgpd started with a given configuration text, for the docs tests (the
// switch side of docs/peering-with-a-tor.md, the misconfigured peers of docs/troubleshooting.md).
// bgp-ts's harness (packages/bgp/harness/daemons.ts) generates its own configurations; these
// run exactly the text given. Each daemon runs in the foreground in its own process group,
// with its control socket in a temporary directory, and is killed on stop or process exit.
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

const BIN = {
  bird: '/usr/sbin/bird',
  birdc: '/usr/sbin/birdc',
  bgpd: '/usr/lib/frr/bgpd',
  vtysh: '/usr/bin/vtysh',
} as const;

export type RouterKind = 'bird' | 'frr';

/** Why `kind` cannot run here, or undefined. Under CI=true a missing router is a failure, not a skip. */
export function routerUnavailable(kind: RouterKind): string | undefined {
  const bins = kind === 'bird' ? [BIN.bird, BIN.birdc] : [BIN.bgpd, BIN.vtysh];
  const missing = bins.filter((b) => !existsSync(b));
  const why =
    missing.length > 0
      ? `${missing.join(', ')} not installed (apt-get install ${kind === 'bird' ? 'bird2' : 'frr'})`
      : process.getuid?.() !== 0
        ? 'TCP-MD5 and loopback BGP need root'
        : undefined;
  if (why !== undefined && process.env['CI'] === 'true')
    throw new Error(`${kind} is required under CI=true: ${why}`);
  return why;
}

export interface Router {
  readonly kind: RouterKind;
  readonly dir: string;
  /** The process group (signal it with process.kill(-pid, ...)). */
  readonly pid: number;
  /** A control command's output (birdc / vtysh). */
  cli(command: string): Promise<string>;
  /** The daemon's own log so far. */
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 5000 }, (err, stdout, stderr) =>
      err === null
        ? resolve(stdout)
        : reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)),
    ),
  );
}

/**
 * Starts `kind` with `config`. FRR listens on `listen` (address and port: bgpd's -l / -p);
 * BIRD's addresses and ports are in its configuration.
 */
export async function startRouter(
  kind: RouterKind,
  config: string,
  listen: { address: string; port: number },
  /** Run inside this network namespace (`ip netns exec`); the control socket stays reachable. */
  netns?: string,
): Promise<Router> {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    });
  }
  const dir = mkdtempSync(join(tmpdir(), `tabby-docs-${kind}-`));
  const conf = join(dir, kind === 'bird' ? 'bird.conf' : 'bgpd.conf');
  writeFileSync(conf, config);
  const logFile = join(dir, `${kind}.log`);
  const ctl = join(dir, 'bird.ctl');
  const args =
    kind === 'bird'
      ? ['-f', '-c', conf, '-s', ctl, '-P', join(dir, 'bird.pid')]
      : // -Z: no zebra (nothing reaches the kernel), -S: no user switch, -P 0: no vty port.
        [
          '-Z',
          '-S',
          '-P',
          '0',
          '-l',
          listen.address,
          '-p',
          String(listen.port),
          '-f',
          conf,
          '--vty_socket',
          dir,
          '-i',
          join(dir, 'bgpd.pid'),
        ];
  const fd = openSync(logFile, 'a');
  const bin = kind === 'bird' ? BIN.bird : BIN.bgpd;
  const [cmd, argv] = netns === undefined ? [bin, args] : ['ip', ['netns', 'exec', netns, bin, ...args]];
  const child = spawn(cmd, argv, {
    cwd: dir,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  live.add(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
    live.delete(child);
  });
  const cli = (command: string): Promise<string> =>
    kind === 'bird'
      ? run(BIN.birdc, ['-s', ctl, command])
      : run(BIN.vtysh, ['--vty_socket', dir, '-d', 'bgpd', '-c', command]);
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      process.kill(-child.pid, 'SIGKILL');
      await until(() => exited, `${kind} to exit`, 5000);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(
      async () => {
        if (exited) throw new Error(`${kind} exited during start-up:\n${log()}`);
        await cli(kind === 'bird' ? 'show status' : 'show version');
        return true;
      },
      `${kind} to answer on its control socket`,
      15_000,
      50,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { kind, dir, pid: child.pid ?? -1, cli, log, stop };
}

/** The BGP state of BIRD protocol `name` (`show protocols`), e.g. "Established" or "Active". */
export async function birdProtocolState(r: Router, name: string): Promise<string | undefined> {
  for (const line of (await r.cli('show protocols')).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === name && f[1] === 'BGP') return f.slice(5).join(' ') || f[3];
  }
  return undefined;
}

/** FRR's neighbors and their states (`show bgp neighbors json`). */
export async function frrNeighborStates(r: Router): Promise<Map<string, string>> {
  const j = JSON.parse(await r.cli('show bgp neighbors json')) as Record<string, { bgpState?: string }>;
  return new Map(
    Object.entries(j)
      .filter(([, v]) => typeof v === 'object' && typeof v.bgpState === 'string')
      .map(([k, v]) => [k, v.bgpState!]),
  );
}
