// The YAML directory's cross-process lock: flock(2) on <root>/.tabby/lock through the
// tabby_flock addon (native/flock.c, built by node-gyp on install). flock is released by
// the kernel when its holder exits or is killed, so a crashed CNI process never leaves a
// stale lock. Waiting never blocks the event loop: LOCK_NB with a short, growing backoff,
// until a deadline that ends in UnavailableError naming the lock file.
//
// flock belongs to an open file description, so one process needs its own in-process
// queue as well: writers take turns on one descriptor (exclusive), readers share another
// (shared) and the kernel keeps the two apart, in this process as across processes.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from '../../store/errors.js';

interface NativeFlock {
  flock(fd: number, operation: number): boolean;
  readonly LOCK_SH: number;
  readonly LOCK_EX: number;
  readonly LOCK_UN: number;
  readonly LOCK_NB: number;
}

/** From dist/src/backends/yaml/ to the package root's build/Release/. */
export const FLOCK_ADDON_PATH = fileURLToPath(
  new URL('../../../../build/Release/tabby_flock.node', import.meta.url),
);

let loaded: NativeFlock | UnavailableError | undefined;

function load(): NativeFlock | UnavailableError {
  if (process.platform !== 'linux')
    return new UnavailableError(
      `the YAML directory datastore needs flock(2) through its native addon, built for Linux only, not ${process.platform}`,
    );
  try {
    return createRequire(import.meta.url)(FLOCK_ADDON_PATH) as NativeFlock;
  } catch (e) {
    const missing = (e as { code?: unknown }).code === 'MODULE_NOT_FOUND';
    return new UnavailableError(
      missing
        ? `the YAML directory datastore's flock addon ${FLOCK_ADDON_PATH} is missing, so writes cannot be ` +
            `serialised between processes; node-gyp builds it when @tabby/datastore is installed ` +
            `(run \`npm rebuild @tabby/datastore\`; it needs python3, make and a C compiler)`
        : `the YAML directory datastore's flock addon ${FLOCK_ADDON_PATH} does not load: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The addon, or throws UnavailableError saying what is missing. */
export function flockAddon(): NativeFlock {
  loaded ??= load();
  if (loaded instanceof UnavailableError) throw loaded;
  return loaded;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A FIFO async mutex whose waiters give up at a deadline. */
class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  async acquire(deadline: number, onTimeout: () => Error): Promise<void> {
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => {
          const i = this.waiters.indexOf(grant);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(onTimeout());
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.push(grant);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.held = false;
  }
}

export class DirLock {
  private exFd: number | undefined;
  private shFd: number | undefined;
  private readonly writers = new Mutex();
  private readers = 0;
  private sharedTaken: Promise<void> | undefined;
  private sharedHeld = false;

  constructor(
    readonly path: string,
    private readonly timeoutMs: number,
  ) {}

  /** Opens (creating) the lock file; throws UnavailableError when the addon is missing. */
  open(): void {
    flockAddon();
    this.exFd ??= openSync(this.path, 'a', 0o644);
    this.shFd ??= openSync(this.path, 'r');
  }

  close(): void {
    for (const fd of [this.exFd, this.shFd]) if (fd !== undefined) closeSync(fd);
    this.exFd = this.shFd = undefined;
  }

  private timeout(): UnavailableError {
    return new UnavailableError(
      `timed out after ${this.timeoutMs} ms waiting for the datastore lock ${this.path} ` +
        `(another process holds it; see \`fuser -v ${this.path}\`)`,
    );
  }

  /** Takes flock(op) on fd, retrying with backoff until the deadline. */
  private async take(fd: number, op: number, deadline: number): Promise<void> {
    const f = flockAddon();
    let wait = 1;
    for (;;) {
      if (f.flock(fd, op | f.LOCK_NB)) return;
      const left = deadline - Date.now();
      if (left <= 0) throw this.timeout();
      // Jitter keeps a crowd of CNI processes from retrying in lockstep.
      await sleep(Math.min(left, wait * (0.5 + Math.random())));
      wait = Math.min(wait * 2, 4);
    }
  }

  /** Runs fn holding the exclusive lock (no other writer or reader in any process). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const fd = this.exFd;
    if (fd === undefined) throw new UnavailableError(`the datastore lock ${this.path} is closed`);
    const deadline = Date.now() + this.timeoutMs;
    await this.writers.acquire(deadline, () => this.timeout());
    try {
      await this.take(fd, flockAddon().LOCK_EX, deadline);
      try {
        return await fn();
      } finally {
        flockAddon().flock(fd, flockAddon().LOCK_UN);
      }
    } finally {
      this.writers.release();
    }
  }

  /** Runs fn holding the shared lock: no writer anywhere, other readers allowed. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    const fd = this.shFd;
    if (fd === undefined) throw new UnavailableError(`the datastore lock ${this.path} is closed`);
    this.readers++;
    try {
      this.sharedTaken ??= this.take(fd, flockAddon().LOCK_SH, Date.now() + this.timeoutMs).then(
        () => void (this.sharedHeld = true),
      );
      await this.sharedTaken;
      return await fn();
    } finally {
      // Synchronous with the count: a reader arriving next takes the lock afresh.
      if (--this.readers === 0) {
        this.sharedTaken = undefined;
        if (this.sharedHeld) flockAddon().flock(fd, flockAddon().LOCK_UN);
        this.sharedHeld = false;
      }
    }
  }
}
