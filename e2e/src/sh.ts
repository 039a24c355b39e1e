// Commands the lab runs: `ip`, `sysctl`, birdc, ping. Synchronous where the next step needs
// the result; every failure carries the command and its stderr.
import { spawn, spawnSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly status: number | null,
    readonly output: string,
  ) {
    super(`${argv.join(' ')} (exit ${status ?? 'signal'}): ${output.trim()}`);
    this.name = 'CommandError';
  }
}

/** Runs a command; its stdout, or a CommandError. */
export function sh(argv: readonly string[], timeoutMs = 30_000): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new CommandError(argv, r.status, `${r.stderr ?? ''}${r.error?.message ?? ''}`);
  return r.stdout;
}

/** Runs a command; whether it exited 0. */
export function succeeds(argv: readonly string[], timeoutMs = 30_000): boolean {
  return spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: timeoutMs }).status === 0;
}

/** `ip -n <ns> ...`. */
export const ipn = (ns: string, ...args: string[]): string => sh(['ip', '-n', ns, ...args]);

/** A command inside a namespace, without blocking the event loop: exit status and output. */
export function inNetns(
  ns: string,
  argv: readonly string[],
  timeoutMs = 30_000,
): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('close', (status) => {
      clearTimeout(t);
      resolve({ status, out });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How much slower than the host things are: in the qemu guest (LAB_GUEST=1, software
 * emulation) 5 - 15x; every wait for a condition is scaled by it.
 */
export const SLOWDOWN = process.env['LAB_GUEST'] === '1' ? 8 : 1;

/**
 * Polls a condition until it holds; resolves with the milliseconds it took. A probe that
 * throws means "not yet"; on timeout the last error, if any, is in the message.
 */
export async function until(
  f: () => boolean | Promise<boolean>,
  what: string,
  ms: number,
  intervalMs = 200,
): Promise<number> {
  const t0 = performance.now();
  const limit = ms * SLOWDOWN;
  let why = '';
  for (;;) {
    try {
      if (await f()) return performance.now() - t0;
    } catch (e) {
      why = `; last error: ${(e as Error).message.split('\n')[0]}`;
    }
    if (performance.now() - t0 > limit)
      throw new Error(`timed out after ${limit / 1000} s waiting for ${what}${why}`);
    await sleep(intervalMs);
  }
}
