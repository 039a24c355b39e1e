// Shared helpers for the YAML directory backend tests: temp stores, child processes, waits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
