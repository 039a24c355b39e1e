// How operators and the CNI plugin reach a running tabby-node: a local control socket (one
// JSON request per line, one JSON answer per line, each connection's answers in the order of
// its requests; `tabby status` and `tabby routes` use it, and the CNI plugin's `cni.*`
// requests, ./cni-service.ts) and HTTP for Prometheus (/metrics) and the kubelet's probes
// (/healthz: the process and its event loop are alive; /readyz: Calico's readiness,
// NodeDaemon.ready).
//
// The socket is created mode 0600, owned by the daemon's user (root): its CNI requests
// assign and release addresses and write WorkloadEndpoints, which only the runtime's CNI
// plugin (run as root) and root operators may do. 0660 would hand that to a group.
import { chmodSync, rmSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createServer } from 'node:http';
import net from 'node:net';
import type { Datastore, DatastoreConfig, Ipam } from '@tabby/datastore';
import type { CniReply, CniRequest } from '@tabby/cni/node-protocol';
import { isCniCommand, ServiceCode } from '@tabby/cni/node-protocol';
import type { Registry } from 'prom-client';
import type { CniServiceOptions } from './cni-service.js';
import { CniService } from './cni-service.js';
import type { DaemonStatus, NodeDaemon } from './node-daemon.js';

export type ControlRequest = { readonly cmd: 'status' } | { readonly cmd: 'routes' } | CniRequest;

/** The control socket's mode: the daemon's user only (see above). */
export const SOCKET_MODE = 0o600;

/** A request line longer than this is refused and the connection closed. */
export const MAX_REQUEST_BYTES = 1 << 20;

export interface RouteReport {
  /** Best paths learned from peers: prefix and next hops. */
  readonly learned: readonly { readonly prefix: string; readonly nextHops: readonly string[] }[];
  /** What this node originates, and why. */
  readonly exported: readonly { readonly prefix: string; readonly reason: string }[];
  /** What the dataplane did with each route it was given (absent without a dataplane). */
  readonly programmed?: readonly ProgrammedRoute[];
}

export interface ProgrammedRoute {
  readonly prefix: string;
  readonly state: 'programmed' | 'pending' | 'refused';
  /** The route as programmed (`via 10.0.0.2 dev tunl0 onlink`), or why it is not. */
  readonly detail: string;
}

export type ControlReply =
  | { readonly ok: true; readonly status: DaemonStatus }
  | { readonly ok: true; readonly routes: RouteReport }
  | { readonly ok: false; readonly error: string }
  | CniReply;

export interface ServerOptions {
  readonly daemon: NodeDaemon;
  readonly socketPath: string;
  /** HTTP for /metrics, /healthz, /readyz; absent: none. */
  readonly http?: { readonly host: string; readonly port: number; readonly registry: Registry };
  /** The dataplane's view of each route, for `tabby routes`. */
  readonly programmed?: () => readonly ProgrammedRoute[];
  /** Event-loop lag above which /healthz fails (default 10 s: the process is wedged). */
  readonly maxLagMs?: number;
  /** The CNI plugin's datastore work (cni.* requests) on this datastore and IPAM; absent: not served. */
  readonly cni?: {
    readonly datastore: Datastore;
    readonly ipam: Ipam;
    /** Where the datastore is (told to the plugin, which compares it with its config's). */
    readonly config?: DatastoreConfig;
    /** Whole invocations run here (CniServiceOptions.invocations). */
    readonly invocations?: CniServiceOptions['invocations'];
  };
  /** The CNI service's structured lines (fields for the log's JSON). */
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ) => void;
}

export function routeReport(daemon: NodeDaemon, programmed?: () => readonly ProgrammedRoute[]): RouteReport {
  const cfg = daemon.applied.config;
  const exported: { prefix: string; reason: string }[] = [];
  for (const fc of cfg === undefined ? [] : [cfg.ipv4, cfg.ipv6]) {
    for (const b of fc.exports.blocks) exported.push({ prefix: b.cidr, reason: 'affine block (aggregate)' });
    for (const r of fc.exports.serviceRoutes) exported.push({ prefix: r, reason: 'service address' });
  }
  const known = new Set(exported.map((e) => e.prefix));
  for (const o of daemon.applied.speaker?.originate ?? [])
    if (!known.has(o.prefix))
      exported.push({
        prefix: o.prefix,
        reason: "borrowed address of a local pod (in another node's block)",
      });
  return {
    learned: [...daemon.learned]
      .map(([prefix, nextHops]) => ({ prefix, nextHops }))
      .sort((a, b) => (a.prefix < b.prefix ? -1 : 1)),
    exported,
    ...(programmed !== undefined ? { programmed: programmed() } : {}),
  };
}

export class DaemonServer {
  private control: net.Server | undefined;
  private http: HttpServer | undefined;
  private lagMs = 0;
  private lagTimer: ReturnType<typeof setInterval> | undefined;
  /** Open control connections, with the work each has in hand. */
  private readonly connections = new Map<net.Socket, () => Promise<void>>();

  private readonly cni: CniService | undefined;

  constructor(private readonly opts: ServerOptions) {
    const c = opts.cni;
    this.cni =
      c === undefined
        ? undefined
        : new CniService({
            datastore: c.datastore,
            ipam: c.ipam,
            ...(c.config === undefined ? {} : { config: c.config }),
            ...(c.invocations === undefined ? {} : { invocations: c.invocations }),
            nodeName: opts.daemon.status().node,
            ready: () => opts.daemon.ready(),
            log: (level, msg, fields) => opts.log?.(level, msg, fields),
          });
  }

  async answer(line: string): Promise<ControlReply> {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch {
      return { ok: false, error: 'the request is not JSON' };
    }
    const cmd = typeof req === 'object' && req !== null ? (req as { cmd?: unknown }).cmd : undefined;
    if (typeof cmd === 'string' && cmd.startsWith('cni.')) {
      if (this.cni === undefined)
        return { ok: false, error: 'this tabby-node serves no CNI requests', code: ServiceCode.Unsupported };
      if (!isCniCommand(cmd))
        return { ok: false, error: `unknown command ${JSON.stringify(cmd)}`, code: ServiceCode.BadRequest };
      return this.cni.answer(req);
    }
    switch (cmd) {
      case 'status':
        return { ok: true, status: this.opts.daemon.status() };
      case 'routes':
        return { ok: true, routes: routeReport(this.opts.daemon, this.opts.programmed) };
      default:
        return { ok: false, error: `unknown command ${JSON.stringify(cmd)}` };
    }
  }

  /** The bound HTTP port (0 without HTTP). */
  get httpPort(): number {
    const a = this.http?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  async start(): Promise<void> {
    rmSync(this.opts.socketPath, { force: true });
    const control = net.createServer((s) => {
      let buf = '';
      // One request at a time per connection, answered in the order they came.
      let last: Promise<void> = Promise.resolve();
      let refused = false;
      this.connections.set(s, () => last);
      s.on('close', () => this.connections.delete(s));
      s.on('data', (d) => {
        if (refused) return;
        buf += d.toString('utf8');
        for (let nl = buf.indexOf('\n'); !refused; nl = buf.indexOf('\n')) {
          // A request past the limit (whole or not yet) ends the connection, answered.
          if ((nl < 0 ? buf.length : nl) > MAX_REQUEST_BYTES) {
            refused = true;
            buf = '';
            const error = `a request longer than ${MAX_REQUEST_BYTES} bytes`;
            last = last.then(() => void s.end(`${JSON.stringify({ ok: false, error })}\n`));
          }
          if (nl < 0 || refused) break;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          last = last.then(async () => {
            const r = await this.answer(line).catch((e: unknown): ControlReply => ({
              ok: false,
              error: `internal error: ${e instanceof Error ? e.message : String(e)}`,
            }));
            if (!s.destroyed) s.write(`${JSON.stringify(r)}\n`);
          });
        }
      });
      s.on('error', () => {});
    });
    const listening = new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.once('listening', () => resolve());
    });
    // Created 0600 (listen binds synchronously): no other user can connect between the
    // bind and the chmod. The umask is the process's, so it is put back at once.
    const umask = process.umask(0o177);
    try {
      control.listen(this.opts.socketPath);
    } finally {
      process.umask(umask);
    }
    await listening;
    chmodSync(this.opts.socketPath, SOCKET_MODE);
    this.control = control;

    // Event-loop lag, sampled: a wedged loop fails /healthz so the kubelet restarts us.
    let last = performance.now();
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.lagMs = Math.max(0, now - last - 500);
      last = now;
    }, 500);
    this.lagTimer.unref();

    const h = this.opts.http;
    if (h === undefined) return;
    const server = createServer((req, res) => {
      const send = (code: number, text: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(code, { 'content-type': type });
        res.end(text);
      };
      if (req.url === '/metrics')
        h.registry.metrics().then(
          (text) => send(200, text, h.registry.contentType),
          (e: unknown) => send(500, String(e)),
        );
      else if (req.url === '/healthz') {
        const max = this.opts.maxLagMs ?? 10_000;
        if (this.lagMs > max) send(503, `event loop lag ${Math.round(this.lagMs)} ms\n`);
        else send(200, 'ok\n');
      } else if (req.url === '/readyz') {
        const r = this.opts.daemon.ready();
        send(r.ready ? 200 : 503, `${r.reason}\n`);
      } else send(404, 'not found\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(h.port, h.host, () => resolve());
    });
    this.http = server;
  }

  /**
   * Stops accepting, lets requests in hand finish (an assignment half done would leave the
   * plugin not knowing; at most `drainMs`), then closes every connection.
   */
  async stop(drainMs = 5000): Promise<void> {
    if (this.lagTimer !== undefined) clearInterval(this.lagTimer);
    const closed = new Promise<void>((r) =>
      this.control === undefined ? r() : this.control.close(() => r()),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.connections.values()].map((work) => work())),
      new Promise((r) => (timer = setTimeout(r, drainMs))),
    ]);
    clearTimeout(timer);
    for (const s of this.connections.keys()) s.destroy();
    await closed;
    await new Promise<void>((r) => (this.http === undefined ? r() : this.http.close(() => r())));
    rmSync(this.opts.socketPath, { force: true });
  }
}

/** Sends one request to a running tabby-node's control socket. */
export function ask(socketPath: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`tabby-node at ${socketPath} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => s.write(`${JSON.stringify(request)}\n`));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      resolve(JSON.parse(buf.slice(0, nl)) as ControlReply);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach tabby-node at ${socketPath}: ${e.message}`));
    });
  });
}
