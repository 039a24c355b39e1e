// The compile cache switch: where it points, that it never throws or hangs, and what it does
// on the Node running the tests (Node >= 22.1 writes the cache; Node 20 has no API).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { EnableCompileCache } from '../src/compile-cache.js';
import { DEFAULT_COMPILE_CACHE_DIR, enableCompileCache } from '../src/compile-cache.js';

const BUNDLE = fileURLToPath(new URL('../bundle/tabby.cjs', import.meta.url));

function withTmp(f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-cc-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('enableCompileCache', () => {
  it('makes_and_uses_the_directory_TABBY_COMPILE_CACHE_names', () =>
    withTmp((tmp) => {
      const dirs: (string | undefined)[] = [];
      const fake: EnableCompileCache = (d) => (dirs.push(d), { status: 1, directory: d ?? '' });
      const dir = join(tmp, 'a', 'b');
      assert.deepEqual(enableCompileCache({ TABBY_COMPILE_CACHE: dir }, fake), {
        state: 'enabled',
        status: 1,
        directory: dir,
      });
      assert.deepEqual(dirs, [dir]);
      assert.ok(existsSync(dir));
    }));

  it('defaults_to_var_cache_tabby_cni', () => {
    const dirs: (string | undefined)[] = [];
    const r = enableCompileCache({}, (d) => (dirs.push(d), { status: 1, directory: d ?? '' }));
    // not root, or a read-only /var: refused before Node is asked
    if (r.state === 'failed') assert.deepEqual(dirs, []);
    else assert.deepEqual(dirs, [DEFAULT_COMPILE_CACHE_DIR]);
  });

  it('is_off_for_off_or_empty_without_calling_node', () => {
    const fake: EnableCompileCache = () => assert.fail('called');
    assert.deepEqual(enableCompileCache({ TABBY_COMPILE_CACHE: 'off' }, fake), { state: 'off' });
    assert.deepEqual(enableCompileCache({ TABBY_COMPILE_CACHE: '' }, fake), { state: 'off' });
  });

  it('reports_rather_than_throws_when_node_fails_or_throws', () =>
    withTmp((tmp) => {
      const env = { TABBY_COMPILE_CACHE: tmp };
      const failed: EnableCompileCache = () => ({ status: 0, message: 'EACCES' });
      assert.deepEqual(enableCompileCache(env, failed), { state: 'failed', message: 'EACCES' });
      const throws: EnableCompileCache = () => {
        throw new Error('boom');
      };
      assert.deepEqual(enableCompileCache(env, throws), { state: 'failed', message: 'boom' });
    }));

  it('refuses_a_directory_that_cannot_be_made_without_asking_node_or_hanging', () => {
    const never: EnableCompileCache = () => assert.fail('node was asked');
    const r = enableCompileCache({ TABBY_COMPILE_CACHE: '/proc/no/such/dir' }, never);
    assert.equal(r.state, 'failed');
  });

  it('says_unsupported_without_the_node_api', () => {
    assert.deepEqual(enableCompileCache({}, null), { state: 'unsupported', node: process.version });
  });

  it('fills_the_cache_on_node_22_and_later_and_writes_nothing_on_node_20', () =>
    withTmp((tmp) => {
      assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run \`npm run bundle:cni\``);
      const version = (cache: string): ReturnType<typeof spawnSync> =>
        spawnSync(process.execPath, [BUNDLE], {
          env: {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            CNI_COMMAND: 'VERSION',
            TABBY_COMPILE_CACHE: cache,
          },
          input: '{}',
          encoding: 'utf8',
          timeout: 20_000,
        });
      const cache = join(tmp, 'cache');
      const r = version(cache);
      assert.equal(r.status, 0, String(r.stderr));
      const api = 'enableCompileCache' in module;
      assert.equal(existsSync(cache) && readdirSync(cache).length > 0, api, `cache written: expected ${api}`);
      // a place that cannot be a directory costs the cache, not the command
      const bad = version('/proc/no/such/dir');
      assert.equal(bad.status, 0, `${String(bad.stderr)} ${String(bad.signal)}`);
      assert.match(String(bad.stdout), /supportedVersions/);
    }));
});
