// Kernel test support: network namespaces made by the tests (named tcn-<tag>-<pid>-<n>) and
// always removed, and the tabby executable run inside the "node" namespace exactly as a
// runtime runs a plugin (environment, config on stdin, result on stdout). The tests skip
// with a printed reason when this process cannot make namespaces (not root, no netns
// support); with CI=true in the environment they fail instead.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { JsonObject } from '../src/spec/result.js';

/** The bundle (what is installed; `npm run build` makes it), from dist/test/. */
export const TABBY_BIN = fileURLToPath(new URL('../bundle/tabby.cjs', import.meta.url));

let probe: string | undefined | null = null;

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailable(): string | undefined {
  if (probe !== null) return probe;
  probe = undefined;
  if (process.platform !== 'linux') probe = `network namespaces need Linux, this is ${process.platform}`;
  else if (process.getuid?.() !== 0) probe = 'kernel tests need root (network namespaces, CAP_NET_ADMIN)';
  else {
    const name = `tcn-probe-${process.pid}`;
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
      execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
    } catch (e) {
      probe = `cannot create a network namespace with ip netns add: ${(e as Error).message.split('\n')[0]}`;
    }
    if (probe === undefined) {
      try {
        execFileSync('ping', ['-V'], { stdio: 'pipe' });
      } catch {
        probe = 'ping is not installed (Debian: iputils-ping)';
      }
    }
  }
  return probe;
}

/**
 * True when the test may go on; otherwise skips it (or throws under CI=true). `more`: a
 * further reason the test cannot run (a missing tool), or undefined.
 */
export function needKernel(t: TestContext, more?: () => string | undefined): boolean {
  const why = kernelUnavailable() ?? more?.();
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`kernel test cannot run under CI: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}

/** Whether this kernel has IPv6 (the dual-stack cases need it). */
export const ipv6Available = (): boolean => existsSync('/proc/sys/net/ipv6/conf/all/disable_ipv6');

let counter = 0;

export class TestNetns {
  readonly name: string;
  readonly path: string;
  private gone = false;

  private constructor(tag: string, prefix: string) {
    this.name = `${prefix}-${tag}-${process.pid}-${counter++}`;
    this.path = `/var/run/netns/${this.name}`;
    execFileSync('ip', ['netns', 'add', this.name], { stdio: 'pipe' });
    this.ip('link', 'set', 'lo', 'up');
  }

  /** `prefix`: tcn for the tests, tcb for the benchmark. */
  static create(tag: string, prefix = 'tcn'): TestNetns {
    return new TestNetns(tag, prefix);
  }

  /** `ip -n <ns> ...args`; its stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** `ip -j -n <ns> ...args`, parsed. */
  ipJson<T = JsonObject>(...args: string[]): T[] {
    const out = this.ip('-j', ...args).trim();
    return out === '' ? [] : (JSON.parse(out) as T[]);
  }

  /** A command inside the namespace; its stdout. Throws (with stderr) on a non-zero exit. */
  exec(cmd: string, ...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  sysctl(name: string): string {
    return this.exec('sysctl', '-n', name).trim();
  }

  /** The names of the links in this namespace, sorted. */
  links(): string[] {
    return this.ipJson<{ ifname: string }>('link', 'show')
      .map((l) => l.ifname)
      .sort();
  }

  /** Removes the namespace (as a runtime does when the sandbox goes); idempotent. */
  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  }
}

/** The node's own addresses, on its uplink. */
export const NODE4 = '10.99.0.1';
export const NODE6 = 'fd99::1';

/**
 * The "node": an uplink (a veth pair standing for eth0, as this kernel may lack the dummy
 * module) with the node's address and the default route, so the pods' gateway 169.254.1.1
 * is routable and proxy ARP answers for it; forwarding on, as on a Kubernetes node.
 */
export function nodeNetns(v6: boolean, prefix = 'tcn'): TestNetns {
  const node = TestNetns.create('node', prefix);
  try {
    node.ip('link', 'add', 'tcn-up0', 'type', 'veth', 'peer', 'name', 'tcn-up1');
    node.ip('link', 'set', 'tcn-up1', 'up');
    node.ip('link', 'set', 'tcn-up0', 'up');
    node.ip('addr', 'add', `${NODE4}/24`, 'dev', 'tcn-up0');
    node.ip('route', 'add', 'default', 'dev', 'tcn-up0');
    node.exec('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    if (v6) {
      node.ip('addr', 'add', `${NODE6}/64`, 'dev', 'tcn-up0', 'nodad');
      node.ip('-6', 'route', 'add', 'default', 'dev', 'tcn-up0');
      node.exec('sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
    }
  } catch (e) {
    node.destroy();
    throw e;
  }
  return node;
}

export interface PluginRun {
  readonly code: number;
  readonly out: JsonObject | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `ip netns exec <node> node dist/bundle/tabby.cjs` with the CNI environment and the
 * config on stdin, as a runtime calls a plugin. Only PATH is inherited.
 */
export function runPlugin(
  node: TestNetns,
  env: Record<string, string>,
  stdin: JsonObject,
): Promise<PluginRun> {
  if (!existsSync(TABBY_BIN))
    return Promise.reject(
      new Error(`${TABBY_BIN} is missing: run \`npm run bundle:cni\` (npm run build does)`),
    );
  return runIn(node, [process.execPath, TABBY_BIN], env, stdin);
}

/** Another plugin executable (a reference plugin from /usr/lib/cni), the same way. */
export function runIn(
  node: TestNetns,
  argv: readonly string[],
  env: Record<string, string>,
  stdin: JsonObject,
): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', node.name, ...argv], {
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      let out: JsonObject | undefined;
      try {
        out = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as JsonObject);
      } catch {
        reject(new Error(`the plugin printed no JSON: ${stdout} ${stderr}`));
        return;
      }
      resolve({ code: code ?? -1, out, stdout, stderr });
    });
    child.stdin.end(JSON.stringify(stdin));
  });
}
