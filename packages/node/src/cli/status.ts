// `tabby status` and `tabby routes`: a running tabby-node's view, asked over its control
// socket. `status` prints the peer table of `calicoctl node status` (peer address, peer type,
// state, since, info) with prefixes in and out; `routes` the learned, exported and programmed
// routes (with the reason a route is not programmed). Both take -o json.
import type { CliCommand, CliCommandContext } from '@tabby/datastore/cli';
import { UsageError } from '@tabby/datastore/cli';
import type { ControlReply, ControlRequest, RouteReport } from '../daemon/server.js';
import { ask } from '../daemon/server.js';
import type { DaemonStatus, PeerView } from '../daemon/node-daemon.js';
import { table } from '../bgpconfig/render/table.js';
import { DEFAULT_NODE_SOCKET } from '@tabby/cni/node-protocol';

/** The daemon's socket, where the CNI plugin looks for it too. */
export const DEFAULT_SOCKET = DEFAULT_NODE_SOCKET;

function flagsOf(cmd: string, argv: readonly string[]): { socket?: string; output: string } {
  let socket: string | undefined;
  let output = 'table';
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (m === null) throw new UsageError(`${cmd}: unexpected argument ${JSON.stringify(argv[i])}`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new UsageError(`${cmd}: --${m[1]} needs a value`);
    if (m[1] === 'socket') socket = v;
    else if (m[1] === 'o' || m[1] === 'output') output = v;
    else throw new UsageError(`${cmd}: unknown flag --${m[1]}`);
  }
  if (output !== 'table' && output !== 'json')
    throw new UsageError(`${cmd}: -o must be table or json, not ${JSON.stringify(output)}`);
  return { ...(socket !== undefined ? { socket } : {}), output };
}

async function request(cmd: string, argv: readonly string[], ctx: CliCommandContext, req: ControlRequest) {
  const f = flagsOf(cmd, argv);
  const socket = f.socket ?? ctx.env['TABBY_NODE_SOCKET'] ?? DEFAULT_SOCKET;
  let reply: ControlReply;
  try {
    reply = await ask(socket, req);
  } catch (e) {
    ctx.stderr(
      `tabby ${cmd}: ${(e as Error).message} (is tabby-node running? --socket names its control socket)\n`,
    );
    return { code: 1 };
  }
  if (!reply.ok) {
    ctx.stderr(`tabby ${cmd}: ${reply.error}\n`);
    return { code: 1 };
  }
  return { code: 0, reply, output: f.output };
}

const time = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

function peerRows(peers: readonly PeerView[]): string {
  return table(
    ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO', 'PREFIXES IN', 'PREFIXES OUT'],
    peers.map((p) => [
      p.port === 179 ? p.address : `${p.address}:${p.port}`,
      p.type,
      p.state === 'established' ? 'up' : 'start',
      time(p.since),
      p.state === 'established'
        ? 'Established'
        : `${p.state[0]!.toUpperCase()}${p.state.slice(1)}${p.info === '' ? '' : ` ${p.info}`}`,
      String(p.prefixesIn),
      String(p.prefixesOut),
    ]),
  );
}

export function formatStatus(s: DaemonStatus): string {
  const out: string[] = [
    `tabby-node is running on ${s.node} (router ID ${s.routerId || 'none'}, AS ${s.asNumber}).`,
  ];
  if (s.speakerError !== undefined) out.push(`BGP is not running: ${s.speakerError}`);
  if (!s.datastore.synced) out.push('The datastore is not synced yet.');
  if (s.datastore.lastError !== undefined) out.push(`Last datastore error: ${s.datastore.lastError}`);
  if (s.kubernetes !== undefined && !s.kubernetes.synced)
    out.push('The Kubernetes objects are not synced yet.');
  if (s.kubernetes?.lastError !== undefined) out.push(`Last Kubernetes API error: ${s.kubernetes.lastError}`);
  for (const fam of [4, 6] as const) {
    const peers = s.peers.filter((p) => p.address.includes(':') === (fam === 6));
    out.push('', `IPv${fam} BGP status`, peers.length === 0 ? `No IPv${fam} peers found.` : peerRows(peers));
  }
  for (const w of s.warnings) out.push(`warning: ${w}`);
  return `${out.join('\n')}\n`;
}

export function formatRoutes(r: RouteReport): string {
  const out: string[] = ['Learned (best paths from peers)'];
  out.push(
    r.learned.length === 0
      ? '  none'
      : table(
          ['  PREFIX', 'NEXT HOPS'],
          r.learned.map((l) => [`  ${l.prefix}`, l.nextHops.join(', ')]),
        ),
  );
  out.push('', 'Exported (originated here)');
  out.push(
    r.exported.length === 0
      ? '  none'
      : table(
          ['  PREFIX', 'WHY'],
          r.exported.map((e) => [`  ${e.prefix}`, e.reason]),
        ),
  );
  if (r.programmed !== undefined) {
    out.push('', 'Programmed (kernel)');
    out.push(
      r.programmed.length === 0
        ? '  none'
        : table(
            ['  PREFIX', 'STATE', 'DETAIL'],
            r.programmed.map((p) => [`  ${p.prefix}`, p.state, p.detail]),
          ),
    );
  }
  return `${out.join('\n')}\n`;
}

export const statusCommand: CliCommand = {
  usage: `  status               the running tabby-node's BGP peers (as calicoctl node status), -o json
  routes               its learned, exported and programmed routes, -o json
                       (both: --socket PATH, or TABBY_NODE_SOCKET; default ${DEFAULT_SOCKET})
`,
  async run(argv, ctx) {
    const r = await request('status', argv, ctx, { cmd: 'status' });
    if (r.reply === undefined || !('status' in r.reply)) return r.code;
    ctx.stdout(
      r.output === 'json' ? `${JSON.stringify(r.reply.status, null, 2)}\n` : formatStatus(r.reply.status),
    );
    return 0;
  },
};

export const routesCommand: CliCommand = {
  usage: '',
  async run(argv, ctx) {
    const r = await request('routes', argv, ctx, { cmd: 'routes' });
    if (r.reply === undefined || !('routes' in r.reply)) return r.code;
    ctx.stdout(
      r.output === 'json' ? `${JSON.stringify(r.reply.routes, null, 2)}\n` : formatRoutes(r.reply.routes),
    );
    return 0;
  },
};
