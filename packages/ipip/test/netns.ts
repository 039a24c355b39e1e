// Network namespaces made by the kernel tests (named tip-<tag>-<pid>-<n>), always removed.
// The tests skip with a printed reason when this process cannot make them (not root, no
// netns support); with CI=true in the environment they fail instead. IPIP tests also need
// the kernel's ipip module, which this build host lacks: they skip with the reason even
// under CI (they run in the qemu lab, ../shared/lab), and fail instead where the module must
// be there: inside the lab guest (LAB_GUEST=1) or with TABBY_REQUIRE_IPIP=1.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

let probe: string | undefined | null = null;
let ipipProbe: string | undefined | null = null;

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailable(): string | undefined {
  if (probe !== null) return probe;
  probe = undefined;
  if (process.platform !== 'linux') probe = `netlink needs Linux, this is ${process.platform}`;
  else if (process.getuid?.() !== 0) probe = 'kernel tests need root (network namespaces, CAP_NET_ADMIN)';
  else {
    const name = `tip-probe-${process.pid}`;
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
      execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
    } catch (e) {
      probe = `cannot create a network namespace with ip netns add: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return probe;
}

/** Why IPIP devices cannot be made here (no ipip module), or undefined when they can. */
export function ipipUnavailable(): string | undefined {
  if (ipipProbe !== null) return ipipProbe;
  ipipProbe = kernelUnavailable();
  if (ipipProbe !== undefined) return ipipProbe;
  const ns = TestNetns.create('ipipprobe');
  try {
    // Explicit endpoints: with the module loaded, an any-to-any device collides with the
    // fallback tunl0 (EEXIST) and would look like a missing module.
    ns.ip('link', 'add', 'tipprobe0', 'type', 'ipip', 'remote', '192.0.2.1', 'local', '192.0.2.2');
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() ?? (e as Error).message.split('\n')[0];
    ipipProbe = `this kernel cannot make ipip devices (${msg}); the IPIP tests run in the qemu lab (../shared/lab)`;
  } finally {
    ns.destroy();
  }
  return ipipProbe;
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

/** As needKernel, for tests that need ipip devices too. */
export function needIpip(t: TestContext): boolean {
  if (!needKernel(t)) return false;
  const why = ipipUnavailable();
  if (why === undefined) return true;
  if (process.env['LAB_GUEST'] === '1' || process.env['TABBY_REQUIRE_IPIP'] === '1')
    throw new Error(`IPIP test cannot run where ipip is required: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}

let counter = 0;

export class TestNetns {
  readonly name: string;
  readonly path: string;

  private constructor(tag: string) {
    this.name = `tip-${tag}-${process.pid}-${counter++}`;
    this.path = `/var/run/netns/${this.name}`;
    execFileSync('ip', ['netns', 'add', this.name], { stdio: 'pipe' });
  }

  static create(tag: string): TestNetns {
    return new TestNetns(tag);
  }

  /** Runs `ip -n <ns> ...args`; returns stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
      readonly link?: string;
      readonly port?: number;
      readonly learning?: boolean;
    };
  };
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
