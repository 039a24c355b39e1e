// A stand-in for tabby-node's control socket, for the plugin's side of the CNI protocol:
// each request line is recorded and answered by a handler, which can also leave it
// unanswered, close the connection or answer garbage. `memoryDaemon` answers as the real
// service would over a tiny in-memory IPAM (the real one is tested with the plugin in
// packages/node/test/cni-service.test.ts).
import { rmSync } from 'node:fs';
import net from 'node:net';
import type { JsonObject } from '../src/spec/result.js';
import { text } from './support.js';

export type FakeReply =
  JsonObject | { readonly hang: true } | { readonly close: true } | { readonly raw: string };
export type FakeHandler = (req: JsonObject) => FakeReply | Promise<FakeReply>;

export class FakeNode {
  readonly requests: JsonObject[] = [];
  connections = 0;

  private constructor(
    readonly path: string,
    private readonly server: net.Server,
    readonly sockets: Set<net.Socket>,
  ) {}

  handler: FakeHandler = memoryDaemon();

  static async start(path: string, handler?: FakeHandler): Promise<FakeNode> {
    rmSync(path, { force: true });
    const sockets = new Set<net.Socket>();
    const box: { node?: FakeNode } = {};
    const server = net.createServer((s) => {
      box.node!.connections++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      let buf = '';
      let last: Promise<void> = Promise.resolve();
      s.on('data', (d) => {
        buf += d.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const req = JSON.parse(buf.slice(0, nl)) as JsonObject;
          buf = buf.slice(nl + 1);
          box.node!.requests.push(req);
          last = last.then(async () => {
            const r = await box.node!.handler(req);
            if ('hang' in r) return;
            if ('close' in r) s.destroy();
            else if ('raw' in r) s.write(`${text(r.raw)}\n`);
            else s.write(`${JSON.stringify(r)}\n`);
          });
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    const node = new FakeNode(path, server, sockets);
    if (handler !== undefined) node.handler = handler;
    box.node = node;
    return node;
  }

  /** The commands received, in order. */
  get cmds(): string[] {
    return this.requests.map((r) => text(r['cmd']));
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface MemoryDaemonOptions {
  readonly node?: string;
  /** What hello says of the daemon's datastore. [Default: null, not told] */
  readonly datastore?: JsonObject;
  readonly ready?: { ready: boolean; reason: string };
  /** Addresses handed out in order. */
  readonly addresses?: readonly string[];
}

/** Answers every request as tabby-node would, over an in-memory IPAM and endpoint store. */
export function memoryDaemon(opts: MemoryDaemonOptions = {}): FakeHandler {
  const free = [...(opts.addresses ?? ['10.80.0.1', '10.80.0.2', '10.80.0.3', '10.80.0.4'])];
  const handles = new Map<string, string[]>();
  const endpoints = new Map<string, JsonObject>();
  const key = (k: JsonObject): string => `${text(k['namespace'])}/${text(k['name'])}`;
  return (req) => {
    switch (req['cmd']) {
      case 'cni.hello':
        return { ok: true, protocol: 1, node: opts.node ?? 'node-1', datastore: opts.datastore ?? null };
      case 'cni.assign': {
        const a = req['assignment'] as JsonObject;
        const ip = free.shift();
        if (ip === undefined) return { ok: false, code: 'PoolExhausted', error: 'no room' };
        handles.set(text(a['handle']), [...(handles.get(text(a['handle'])) ?? []), ip]);
        return { ok: true, addresses: [ip] };
      }
      case 'cni.release':
        free.push(...(handles.get(text(req['handle'])) ?? []));
        handles.delete(text(req['handle']));
        return { ok: true };
      case 'cni.addresses':
        return { ok: true, addresses: handles.get(text(req['handle'])) ?? [] };
      case 'cni.handles':
        return {
          ok: true,
          handles: [...handles.keys()].filter((h) => h.startsWith(`${text(req['network'])}.`)),
        };
      case 'cni.endpoint.put': {
        const e = req['endpoint'] as JsonObject;
        endpoints.set(key(e), e);
        return { ok: true };
      }
      case 'cni.endpoint.get':
        return { ok: true, endpoint: endpoints.get(key(req['key'] as JsonObject)) ?? null };
      case 'cni.endpoint.delete':
        return { ok: true, result: endpoints.delete(key(req['key'] as JsonObject)) ? 'deleted' : 'absent' };
      case 'cni.endpoint.list':
        return {
          ok: true,
          endpoints: [...endpoints.values()].map((e) => {
            const spec = e['spec'] as JsonObject;
            return {
              namespace: e['namespace'] ?? null,
              name: e['name'] ?? null,
              containerID: spec['containerID'] ?? null,
              endpoint: spec['endpoint'] ?? null,
            };
          }),
        };
      case 'cni.pools':
        return {
          ok: true,
          pools: [
            {
              name: 'p',
              cidr: '10.80.0.0/29',
              disabled: false,
              capacity: 8,
              inUse: 8 - free.length,
              free: free.length,
            },
          ],
        };
      case 'cni.ready':
        return { ok: true, ...(opts.ready ?? { ready: true, reason: '0 of 0 BGP peers Established' }) };
      default:
        return { ok: false, error: `unknown command ${JSON.stringify(req['cmd'] ?? null)}` };
    }
  };
}
