// A real, single-member etcd for tests: on 127.0.0.1 (or one given address), free ports from
// 23790-23839, a temporary data directory, stop and restart on the same directory and ports.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
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

/** PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/** Makes a TestPki with openssl in a new temporary directory (the caller removes it). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-pki-'));
  const f = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=tabby-test-ca',
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    ssl(
      'req',
      ...ec,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=tabby-test-${name}`,
    );
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.crt`),
    );
  }
  return {
    dir,
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
  };
}

export class EtcdServer {
  private proc: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    /** Serve clients over TLS with these files, and require client certificates. */
    private readonly pki: TestPki | undefined,
    /** The IPv4 address it listens on (clients and its one peer URL). */
    readonly host: string,
  ) {}

  get endpoint(): string {
    return `${this.pki === undefined ? 'http' : 'https'}://${this.host}:${this.clientPort}`;
  }

  /**
   * Starts etcd on two free ports; other processes may race for them, so it tries a few pairs.
   * `host` (default 127.0.0.1) is an address of this network namespace for clients in others
   * (the cluster lab's management segment); the test certificates name 127.0.0.1 only.
   */
  static async start(opts: { readonly pki?: TestPki; readonly host?: string } = {}): Promise<EtcdServer> {
    const host = opts.host ?? '127.0.0.1';
    let lastError: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      const [client, peer] = await freePorts(2, host);
      const s = new EtcdServer(mkdtempSync(join(tmpdir(), 'tabby-etcd-')), client!, peer!, opts.pki, host);
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
    const client = this.endpoint;
    const pki = this.pki;
    const tlsArgs =
      pki === undefined
        ? []
        : [
            `--cert-file=${pki.serverCertFile}`,
            `--key-file=${pki.serverKeyFile}`,
            `--trusted-ca-file=${pki.caFile}`,
            '--client-cert-auth',
          ];
    const peer = `http://${this.host}:${this.peerPort}`;
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
        ...tlsArgs,
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
        if (await this.healthy()) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd did not become healthy in 15 s: ${this.stderr}`);
  }

  private async healthy(): Promise<boolean> {
    const pki = this.pki;
    if (pki === undefined) {
      const r = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      return ((await r.json()) as { health?: string }).health === 'true';
    }
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        `${this.endpoint}/health`,
        {
          ca: readFileSync(pki.caFile),
          cert: readFileSync(pki.clientCertFile),
          key: readFileSync(pki.clientKeyFile),
          timeout: 1000,
        },
        (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    return (JSON.parse(body) as { health?: string }).health === 'true';
  }
}

async function freePorts(n: number, host: string): Promise<number[]> {
  const out: number[] = [];
  const span = PORTS.last - PORTS.first + 1;
  const offset = Math.floor(Math.random() * span);
  for (let i = 0; i < span && out.length < n; i++) {
    const port = PORTS.first + ((offset + i) % span);
    if (await canListen(port, host)) out.push(port);
  }
  if (out.length < n) throw new Error(`no ${n} free ports in ${PORTS.first}-${PORTS.last}`);
  return out;
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
