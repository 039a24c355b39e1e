// One connection to tabby-node's control socket, as the CNI plugin uses it: one JSON request
// per line, answered in order (packages/node/src/daemon/server.ts). Shared by the datastore
// session (./client.ts) and the whole-invocation hand-over (./delegate.ts); it loads nothing
// but node:net and the protocol's parsers, so the plugin's ADD through the daemon stays small.
import net from 'node:net';
import type { CniAnswer, CniCommandName, CniRequestOf } from './protocol.js';
import { parseCniAnswer, ProtocolError } from './protocol.js';

/** A failure the daemon reported for a request: the datastore's or IPAM's code, or a ServiceCode. */
export class NodeFailure extends Error {
  override readonly name = 'NodeFailure';
  constructor(
    readonly code: string,
    message: string,
    /** NamespaceLabelsNeeded: the pools that select by namespace. */
    readonly pools: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * No answer: the connection closed or timed out. `sent`: the request had been written, so
 * the daemon may have carried it out.
 */
export class NodeLostError extends Error {
  override readonly name = 'NodeLostError';
  constructor(
    readonly socket: string,
    readonly reason: string,
    readonly sent: boolean,
  ) {
    super(`tabby-node at ${socket}: ${reason}`);
  }
}

interface Waiting {
  readonly cmd: CniCommandName;
  readonly timeoutMs: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/**
 * How a session's requests reach the CNI service: a connection to the daemon's socket, or,
 * inside the daemon (a whole invocation run there: ../serve-run.ts), a direct call. Failures
 * the service reports are NodeFailures; a lost daemon is a NodeLostError.
 */
export interface NodeTransport {
  /** Where the service is, for messages (the socket's path). */
  readonly path: string;
  request<K extends CniCommandName>(req: CniRequestOf<K>, timeoutMs: number): Promise<CniAnswer<K>>;
  close(): void;
}

/** One connection: requests answered in order (the server answers each connection's lines in order). */
export class Connection implements NodeTransport {
  private buf = '';
  private readonly waiting: Waiting[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lost: NodeLostError | undefined;

  private constructor(
    private readonly s: net.Socket,
    readonly path: string,
  ) {
    s.setEncoding('utf8');
    s.on('data', (d: string) => this.data(d));
    s.on('error', (e) => this.fail(`the connection failed: ${e.message}`));
    s.on('close', () => this.fail('the connection closed'));
  }

  /** Rejects with the socket's error (`code` ENOENT, ECONNREFUSED, EACCES, ...) or ETIMEDOUT. */
  static connect(path: string, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path });
      const timer = setTimeout(() => {
        s.destroy();
        reject(Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new Connection(s, path));
      });
    });
  }

  request<K extends CniCommandName>(req: CniRequestOf<K>, timeoutMs: number): Promise<CniAnswer<K>> {
    if (this.lost !== undefined)
      return Promise.reject(
        new NodeLostError(this.path, `not sent, the connection was lost (${this.lost.reason})`, false),
      );
    return new Promise((resolve, reject) => {
      this.waiting.push({ cmd: req.cmd, timeoutMs, resolve: resolve, reject });
      this.s.write(`${JSON.stringify(req)}\n`);
      this.arm();
    });
  }

  /**
   * The oldest request has `timeoutMs` to be answered (from when it became the oldest). A
   * late answer would be taken for the next request's, so a timeout ends the connection.
   */
  private arm(): void {
    const w = this.waiting[0];
    if (this.timer !== undefined || w === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fail(`no answer to ${w.cmd} within ${w.timeoutMs} ms`);
    }, w.timeoutMs);
  }

  private data(d: string): void {
    this.buf += d;
    for (let nl = this.buf.indexOf('\n'); nl >= 0 && this.lost === undefined; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const w = this.waiting.shift();
      if (w === undefined) {
        this.fail(`an answer nobody asked for: ${line.slice(0, 200)}`);
        return;
      }
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.arm();
      let a;
      try {
        a = parseCniAnswer(w.cmd, JSON.parse(line) as unknown);
      } catch (e) {
        w.reject(
          e instanceof ProtocolError ? e : new ProtocolError('', `is not JSON: ${line.slice(0, 200)}`),
        );
        this.fail(`its answer to ${w.cmd} was not understood`);
        return;
      }
      if (a.ok) w.resolve(a);
      else w.reject(new NodeFailure(a.code, a.error, a.pools ?? []));
    }
  }

  private fail(reason: string): void {
    if (this.lost !== undefined) return;
    this.lost = new NodeLostError(this.path, reason, true);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.s.destroy();
    for (const w of this.waiting.splice(0)) w.reject(new NodeLostError(this.path, reason, true));
  }

  close(): void {
    this.fail('closed');
  }
}
