// A child process for the multi-process YAML backend tests (run from dist/test/yaml/):
//
//   child.js counter <root> <name> <increments>   compare-and-swap increments of IPAMBlock <name>
//   child.js create <root> <prefix> <count>       creates IPAMHandles <prefix>-0 … <prefix>-<count-1>
//   child.js hold-lock <root>                     takes the store's flock, prints "locked", waits
//
// Prints one JSON line with what it did; exits non-zero on any unexpected error.
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { YamlDirBackend } from '../../src/backends/yaml/index.js';
import { flockAddon } from '../../src/backends/yaml/lock.js';
import { API_VERSION } from '../../src/resources/meta.js';
import { ConflictError } from '../../src/store/errors.js';

async function counter(root: string, name: string, increments: number): Promise<void> {
  const b = await YamlDirBackend.open({ root, lockTimeoutMs: 30_000 });
  let conflicts = 0;
  for (let done = 0; done < increments;) {
    const cur = await b.get({ kind: 'IPAMBlock', name });
    if (cur === undefined) throw new Error(`IPAMBlock ${name} is missing`);
    const n = (cur.spec as { n: number }).n;
    try {
      await b.update({ ...cur, spec: { n: n + 1 } });
      done++;
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
      conflicts++;
    }
  }
  await b.close();
  console.log(JSON.stringify({ increments, conflicts }));
}

async function create(root: string, prefix: string, count: number): Promise<void> {
  const b = await YamlDirBackend.open({ root, lockTimeoutMs: 30_000 });
  for (let i = 0; i < count; i++)
    await b.create({
      apiVersion: API_VERSION,
      kind: 'IPAMHandle',
      metadata: { name: `${prefix}-${i}` },
      spec: { handleID: `${prefix}-${i}`, block: { '10.65.1.0/26': 1 } },
    });
  await b.close();
  console.log(JSON.stringify({ created: count }));
}

function holdLock(root: string): void {
  const f = flockAddon();
  const fd = openSync(join(root, '.tabby', 'lock'), 'r');
  if (!f.flock(fd, f.LOCK_EX | f.LOCK_NB)) throw new Error('the lock is already held');
  console.log('locked');
  // Held until killed (the kernel releases it) or until stdin closes.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

const [mode, root, a, b] = process.argv.slice(2);
try {
  if (mode === 'counter' && root !== undefined && a !== undefined) await counter(root, a, Number(b));
  else if (mode === 'create' && root !== undefined && a !== undefined) await create(root, a, Number(b));
  else if (mode === 'hold-lock' && root !== undefined) holdLock(root);
  else throw new Error(`usage: child.js counter|create|hold-lock <root> …, not ${process.argv.join(' ')}`);
} catch (e) {
  console.error(e);
  process.exit(1);
}
