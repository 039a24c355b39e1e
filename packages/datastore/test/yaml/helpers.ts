// Shared helpers for the YAML directory backend tests: temp stores, child processes, waits.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Watch, WatchEvent } from '../../src/store/backend.js';
import type { YamlDirBackendOptions } from '../../src/backends/yaml/index.js';
import { YamlDirBackend } from '../../src/backends/yaml/index.js';

/** A fresh store directory under the OS temp dir; `remove()` deletes it. */
export function tempRoot(): { root: string; remove: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'tabby-yaml-'));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Opens backends on one root and closes them all (then removes the root) in cleanup. */
export function store(opts: Omit<YamlDirBackendOptions, 'root'> = {}): {
  root: string;
  open: () => Promise<YamlDirBackend>;
  cleanup: () => Promise<void>;
} {
  const { root, remove } = tempRoot();
  const opened: YamlDirBackend[] = [];
  return {
    root,
    open: async () => {
      const b = await YamlDirBackend.open({ root, ...opts });
      opened.push(b);
      return b;
    },
    cleanup: async () => {
      for (const b of opened) await b.close();
      remove();
    },
  };
}

/** dist/test/yaml/child.js, the multi-process tests' worker. */
export const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export interface Child {
  readonly proc: ChildProcess;
  /** Resolves with stdout when the child exits 0; rejects with its exit status otherwise. */
  readonly done: Promise<string>;
  /** Resolves when stdout contains `text`. */
  waitFor(text: string, ms?: number): Promise<void>;
}

export function spawnChild(args: string[]): Child {
  const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => {
    out += d;
    for (const w of waiters) if (out.includes(w.text)) w.resolve();
  });
  const done = new Promise<string>((resolve, reject) =>
    proc.on('exit', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`child ${args.join(' ')} exited ${code ?? signal}`)),
    ),
  );
  // Observed here so a child killed on purpose is no unhandled rejection; callers still see it.
  done.catch(() => undefined);
  return {
    proc,
    done,
    waitFor: (text, ms = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (out.includes(text)) return resolve();
        const timer = setTimeout(() => reject(new Error(`child never printed ${text}`)), ms);
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
  };
}

/** The next event of one of `types` (others skipped), or fails after `ms`. */
export async function next<T extends WatchEvent['type']>(
  w: Watch,
  types: readonly T[],
  ms = 5000,
): Promise<WatchEvent & { type: T }> {
  const it = w[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  const skipped: string[] = [];
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<'timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
      ),
    ]);
    clearTimeout(timer);
    if (r === 'timeout')
      throw new Error(`no ${types.join('/')} event within ${ms} ms (skipped ${skipped.join(', ')})`);
    if (r.done === true) throw new Error('watch ended');
    if ((types as readonly string[]).includes(r.value.type)) return r.value as WatchEvent & { type: T };
    skipped.push(r.value.type);
  }
}
