#!/usr/bin/env node
// The qemu lab step of `npm test`: the IPIP kernel tests need the ipip module, which this
// project's machines lack, so e2e/lab/run-ipip.sh runs them in a small VM with Debian's stock
// kernel. It needs root and qemu. Where either is missing it skips, saying why; under CI=true
// (where .ci/run has installed qemu) a missing facility is a failure instead.
import { spawnSync } from 'node:child_process';

function missing() {
  if (process.platform !== 'linux') return `the lab needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'the lab needs root (it makes network namespaces and boots qemu)';
  const q = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' });
  if (q.status !== 0)
    return 'qemu-system-x86_64 is not installed (apt install qemu-system-x86 kmod xz-utils busybox-static)';
  return undefined;
}

const why = missing();
if (why !== undefined) {
  if (process.env['CI'] === 'true') {
    console.error(`test-lab: cannot run under CI: ${why}`);
    process.exit(1);
  }
  console.log(`test-lab: SKIPPED: ${why}`);
  process.exit(0);
}
// `npm test` has just built everything.
const r = spawnSync('bash', ['e2e/lab/run-ipip.sh'], {
  stdio: 'inherit',
  env: { ...process.env, LAB_NO_BUILD: process.env['LAB_NO_BUILD'] ?? '1' },
});
process.exit(r.status ?? 1);
