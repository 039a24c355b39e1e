// Four processes, each with its own etcd client, race compare-and-swap increments of one
// counter: every increment must land exactly once (no lost update, no double write).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import { EtcdBackend } from '../src/backends/etcd/index.js';
import { res } from './conformance/suite.js';
import { EtcdServer, etcdSkipReason } from '../src/testing/index.js';

const CHILD = fileURLToPath(new URL('./support/cas-counter-child.js', import.meta.url));
const PROCESSES = 4;
const EACH = 200;

const skip = etcdSkipReason();
if (skip !== undefined) {
  it('etcd_multiprocess_tests_need_etcd', { skip }, () => {});
} else {
  const server = await EtcdServer.start();
  after(() => server.stop());

  it('four_processes_doing_200_compare_and_swap_increments_each_count_to_800', async () => {
    const prefix = `/tabby-test/${randomUUID()}`;
    const b = new EtcdBackend({ endpoints: [server.endpoint], prefix });
    try {
      await b.create(res('IPAMConfig', 'counter', { n: 0 }));
      const t0 = Date.now();
      const outs = await Promise.all(
        Array.from({ length: PROCESSES }, () =>
          run(process.execPath, [CHILD, server.endpoint, prefix, String(EACH)]),
        ),
      );
      const ms = Date.now() - t0;
      const conflicts = outs.map((o) => (JSON.parse(o) as { conflicts: number }).conflicts);
      const final = await b.get({ kind: 'IPAMConfig', name: 'counter' });
      assert.deepEqual(final?.spec, { n: PROCESSES * EACH });
      console.log(
        `# ${PROCESSES * EACH} increments in ${ms} ms, conflicts per process: ${conflicts.join(' ')}`,
      );
    } finally {
      await b.close();
    }
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`child exited ${code ?? signal}: ${err}`)),
    );
  });
}
