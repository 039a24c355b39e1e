// Network namespaces for kernel tests, shared by every package's tests (netlink, ipip,
// felix-lite, cni): made with `ip netns add` under a per-package prefix (tnl-, tip-, tfl-,
// ...), always removed by the test. Kernel tests skip with a printed reason when this process
// cannot make namespaces (not root, no netns support); with CI=true they fail instead.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

let defaultPrefix = 'tnl';
let probe: string | undefined | null = null;
let counter = 0;

/** The prefix of namespaces this process makes (each package's tests set their own). */
export function setNetnsPrefix(prefix: string): void {
  defaultPrefix = prefix;
}

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailable(): string | undefined {
  if (probe !== null) return probe;
  probe = undefined;
  if (process.platform !== 'linux') probe = `kernel tests need Linux, this is ${process.platform}`;
  else if (process.getuid?.() !== 0) probe = 'kernel tests need root (network namespaces, CAP_NET_ADMIN)';
  else {
    const name = `${defaultPrefix}-probe-${process.pid}`;
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
      execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
    } catch (e) {
      probe = `cannot create a network namespace with ip netns add: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return probe;
}

/** True when the test may go on; otherwise skips it (or throws under CI=true). */
export function needKernel(t: TestContext): boolean {
  const why = kernelUnavailable();
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`kernel test cannot run under CI: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}

/** One `ip -j -d link show` object (the fields the tests read). */
export interface IpLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly flags: readonly string[];
  readonly mtu: number;
  readonly address?: string;
  readonly linkinfo?: {
    readonly info_kind: string;
    readonly info_data?: {
      readonly id?: number;
      readonly local?: string;
      /** An IPv6 local address (`ip` prints it apart from an IPv4 one). */
      readonly local6?: string;
      readonly link?: string;
      readonly port?: number;
      readonly learning?: boolean;
    };
  };
}

export class TestNetns {
  readonly name: string;
  readonly path: string;

  private constructor(tag: string, prefix: string) {
    this.name = `${prefix}-${tag}-${process.pid}-${counter++}`;
    this.path = `/var/run/netns/${this.name}`;
    execFileSync('ip', ['netns', 'add', this.name], { stdio: 'pipe' });
  }

  static create(tag: string, prefix = defaultPrefix): TestNetns {
    return new TestNetns(tag, prefix);
  }

  /** Runs `ip -n <ns> ...args`; returns stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** `ip route show` lines (IPv4 or IPv6) matching the extra selectors, sorted. */
  routes(family: 4 | 6, ...selectors: string[]): string[] {
    return this.ip(`-${family}`, 'route', 'show', ...selectors)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .sort();
  }

  /** `ip -j -d link show <dev>`'s one object, or undefined when there is no such device. */
  link(dev: string): IpLink | undefined {
    try {
      return (JSON.parse(this.ip('-j', '-d', 'link', 'show', 'dev', dev)) as IpLink[])[0];
    } catch {
      return undefined;
    }
  }

  /** "a.b.c.d/len" of the device's IPv4 addresses, sorted. */
  addresses(dev: string): string[] {
    const out = JSON.parse(this.ip('-j', '-4', 'addr', 'show', 'dev', dev)) as {
      addr_info: { local: string; prefixlen: number }[];
    }[];
    return (out[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();
  }

  destroy(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  }
}

/** Polls until cond() is true; resolves with the milliseconds it took, rejects after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (cond()) return performance.now() - start;
    if (performance.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
