#!/usr/bin/env node
// Runs the compiled tests again on the current Node LTS, so `engines` stays true for both
// Node 20 (this machine) and the LTS production images use. The LTS binary comes from the
// npm registry package node-<platform>-<arch> (the binary ships inside the package) and is
// cached in node_modules/.cache/node-lts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const LTS_MAJOR = 24;
const pkg = `node-${process.platform}-${process.arch}`;
const cache = join('node_modules', '.cache', 'node-lts', `${pkg}-${LTS_MAJOR}`);
const bin = join(cache, 'package', 'bin', 'node');

if (Number(process.versions.node.split('.')[0]) === LTS_MAJOR) {
  console.log(`test-lts: already running on Node ${process.version}; nothing more to run`);
  process.exit(0);
}
if (!existsSync(bin)) {
  mkdirSync(cache, { recursive: true });
  const packed = spawnSync('npm', ['pack', `${pkg}@${LTS_MAJOR}`, '--pack-destination', cache, '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tgz = readdirSync(cache).find((f) => f.endsWith('.tgz'));
  if (packed.status !== 0 || tgz === undefined) {
    // Only a missing facility may skip, and it says so.
    console.log(
      `test-lts: SKIPPED: could not fetch ${pkg}@${LTS_MAJOR} from the npm registry (npm pack exit ${packed.status})`,
    );
    process.exit(process.env.CI === 'true' ? 1 : 0);
  }
  const untar = spawnSync('tar', ['xzf', join(cache, tgz), '-C', cache], { stdio: 'inherit' });
  if (untar.status !== 0) process.exit(1);
}
const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`test-lts: running the tests again on Node ${version}`);
const r = spawnSync(bin, ['scripts/run-tests.mjs', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
