// V8's compile cache for the executables (Node >= 22.1: module.enableCompileCache). Each
// plugin run is a fresh process, so without it every run compiles the bundle again. The
// cache is a speed-up only: it is turned on before the rest of the plugin is loaded (the
// entry imports this module, then the plugin dynamically), and nothing about it ever fails
// the command. Node 20 has no such API: there it does nothing.
import { accessSync, constants, mkdirSync } from 'node:fs';
import module from 'node:module';
import { resolve } from 'node:path';

/** Where the cache lives unless TABBY_COMPILE_CACHE says otherwise (`off`: no cache). */
export const DEFAULT_COMPILE_CACHE_DIR = '/var/cache/tabby/cni';

/** node:module's enableCompileCache (Node >= 22.1), as far as we use it. */
export type EnableCompileCache = (dir?: string) => { status: number; message?: string; directory?: string };

export type CompileCacheOutcome =
  | { readonly state: 'off' }
  | { readonly state: 'unsupported'; readonly node: string }
  | { readonly state: 'enabled'; readonly status: number; readonly directory: string }
  | { readonly state: 'failed'; readonly message: string };

const builtin = (module as { enableCompileCache?: EnableCompileCache }).enableCompileCache ?? null;

/**
 * mkdir -p, one level at a time. Node's own recursive mkdirSync (20 and 24 alike) loops
 * forever when mkdir says ENOENT under an existing parent (any path under /proc), and
 * enableCompileCache uses it: so the directory is made here first, or refused.
 */
function makeDir(dir: string): void {
  let p = '';
  for (const part of resolve(dir).split('/').slice(1)) {
    p += `/${part}`;
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'EEXIST') throw e;
    }
  }
  accessSync(dir, constants.W_OK);
}

export function enableCompileCache(
  env: Readonly<Record<string, string | undefined>>,
  enable: EnableCompileCache | null = builtin,
): CompileCacheOutcome {
  const dir = env['TABBY_COMPILE_CACHE'] ?? DEFAULT_COMPILE_CACHE_DIR;
  if (dir === '' || dir === 'off') return { state: 'off' };
  if (enable === null) return { state: 'unsupported', node: process.version };
  try {
    makeDir(dir);
  } catch (e) {
    return { state: 'failed', message: e instanceof Error ? e.message : String(e) };
  }
  try {
    // status: ENABLED, ALREADY_ENABLED (NODE_COMPILE_CACHE set), FAILED or DISABLED
    // (NODE_DISABLE_COMPILE_CACHE); Node reports rather than throws, but a cache must never
    // cost a pod its network either way.
    const r = enable(dir);
    return r.message !== undefined && r.directory === undefined
      ? { state: 'failed', message: r.message }
      : { state: 'enabled', status: r.status, directory: r.directory ?? dir };
  } catch (e) {
    return { state: 'failed', message: e instanceof Error ? e.message : String(e) };
  }
}
