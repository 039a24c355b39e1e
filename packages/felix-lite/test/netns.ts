// Network namespaces made by the kernel tests (named tfl-<tag>-<pid>-<n>, or with another
// prefix such as the VXLAN data-path test's tip-), always removed.
// The tests skip with a printed reason when this process cannot make them (not root, no
// netns support); with CI=true in the environment they fail instead.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

let probe: string | undefined | null = null;

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailable(): string | undefined {
  if (probe !== null) return probe;
  probe = undefined;
  if (process.platform !== 'linux') probe = `netlink needs Linux, this is ${process.platform}`;
  else if (process.getuid?.() !== 0) probe = 'kernel tests need root (network namespaces, CAP_NET_ADMIN)';
  else {
    const name = `tfl-probe-${process.pid}`;
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

let counter = 0;

export class TestNetns {
  readonly name: string;
  readonly path: string;

  private constructor(tag: string, prefix: string) {
    this.name = `${prefix}-${tag}-${process.pid}-${counter++}`;
    this.path = `/var/run/netns/${this.name}`;
    execFileSync('ip', ['netns', 'add', this.name], { stdio: 'pipe' });
  }

  static create(tag: string, prefix = 'tfl'): TestNetns {
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
