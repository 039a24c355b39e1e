// bgp-ts as a benchmark target: `bgp-ts run` in its own process (so its RSS and CPU are
// its own), configured from the same TargetSpec as the other daemons.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isListening, processUsage } from '../harness/daemons.js';
import type { BenchTarget, RunningTarget, TargetSpec } from './speaker.bench.js';

const BIN = fileURLToPath(new URL('../../bin/bgp-ts.js', import.meta.url));

function yamlOf(spec: TargetSpec, dir: string): string {
  const rs = spec.role === 'route-server';
  const peers = spec.peers.map((p, i) =>
    [
      `  - name: p${i}`,
      `    address: ${p.address}`,
      `    asn: ${p.asn}`,
      `    passive: true`,
      `    holdTime: ${spec.holdTime}`,
      `    families: [ipv4-unicast, ipv6-unicast]`,
      rs ? `    routeServerClient: true` : `    routeReflectorClient: true`,
      ...(p.receive ? [] : [`    export: { default: reject }`]),
    ].join('\n'),
  );
  return [
    `routerId: ${spec.routerId}`,
    `asn: ${spec.asn}`,
    `listen: { address: ${spec.address}, port: ${spec.port} }`,
    `controlSocket: ${join(dir, 'bgp-ts.sock')}`,
    `logLevel: warn`,
    `peers:`,
    ...peers,
    '',
  ].join('\n');
}

export const bgpTsTarget: BenchTarget = {
  name: 'bgp-ts',
  version: () => `bgp-ts (Node ${process.version})`,
  unavailable: () => undefined,
  settleMs: () => 200,
  start: async (spec: TargetSpec): Promise<RunningTarget> => {
    const dir = mkdtempSync(join(tmpdir(), 'bgpts-self-'));
    const config = join(dir, 'speaker.yaml');
    const logFile = join(dir, 'bgp-ts.log');
    writeFileSync(config, yamlOf(spec, dir));
    // BGPTS_NODE_ARGS: extra node flags for the target (e.g. --cpu-prof --cpu-prof-dir=/tmp/p).
    const extra = (process.env['BGPTS_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    const args = ['--max-semi-space-size=64', ...extra, BIN, 'run', '--config', config];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let exited = false;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', () => (exited = true));
    const t0 = Date.now();
    while (!isListening(spec.address, spec.port)) {
      if (exited) throw new Error(`bgp-ts exited before listening: ${stderr}`);
      if (Date.now() - t0 > 10_000) throw new Error('bgp-ts did not listen within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = child.pid!;
    return {
      pid,
      address: spec.address,
      port: spec.port,
      logFile,
      get exited() {
        return exited;
      },
      usage: () => processUsage(pid),
      stop: async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const t = Date.now();
          while (!exited && Date.now() - t < 5000) await new Promise((r) => setTimeout(r, 50));
          if (!exited) child.kill('SIGKILL');
        }
        if (!spec.keepDir) rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
