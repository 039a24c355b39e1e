// A real, single-member etcd for tests: 127.0.0.1 only, free ports from 23790-23839, a
// temporary data directory, stop and restart on the same directory and ports.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BIN = process.env['ETCD_BIN'] ?? '/usr/bin/etcd';
const PORTS = { first: 23790, last: 23839 };

/**
 * Why etcd tests cannot run here, or undefined when they can. With CI=true a missing etcd is
 * an error, not a skip.
 */
export function etcdSkipReason(): string | undefined {
  if (existsSync(ETCD_BIN)) return undefined;
  const why = 'etcd not installed (apt install etcd-server)';
  if (process.env['CI'] === 'true') throw new Error(`${why}; CI=true, so this is a failure`);
  console.log(`# skipping etcd tests: ${why}`);
  return why;
}

export class EtcdServer {
  private proc: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  /** Starts etcd on two free ports; other processes may race for them, so it tries a few pairs. */
  static async start(): Promise<EtcdServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      const [client, peer] = await freePorts(2);
      const s = new EtcdServer(mkdtempSync(join(tmpdir(), 'tabby-etcd-')), client!, peer!);
      try {
        await s.launch();
        return s;
      } catch (e) {
        lastError = e;
        await s.stop();
      }
    }
    throw new Error(`could not start etcd: ${String(lastError)}`);
  }

  /** Stops etcd (SIGTERM, SIGKILL after 5 s), keeping its data. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  /** Starts it again on the same data directory and ports. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stops etcd and removes its data directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const client = `http://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.stderr = '';
    const p = spawn(
      ETCD_BIN,
      [
        '--name=tabby-test',
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=tabby-test=${peer}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.proc = p;
    p.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (p.exitCode !== null || p.signalCode !== null)
        throw new Error(`etcd exited (${p.exitCode ?? p.signalCode}): ${this.stderr}`);
      try {
        const r = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await r.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd did not become healthy in 15 s: ${this.stderr}`);
  }
}

async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  const span = PORTS.last - PORTS.first + 1;
  const offset = Math.floor(Math.random() * span);
  for (let i = 0; i < span && out.length < n; i++) {
    const port = PORTS.first + ((offset + i) % span);
    if (await canListen(port)) out.push(port);
  }
  if (out.length < n) throw new Error(`no ${n} free ports in ${PORTS.first}-${PORTS.last}`);
  return out;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
