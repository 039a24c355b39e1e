// The plugin's first step for ADD, DEL and CHECK: hand the whole invocation to tabby-node
// (`cni.run`, ../serve-run.ts) and print what it answers. The daemon has the datastore open,
// the netlink addon loaded and the code compiled, so this process only starts Node and loads
// this module (node:fs, the connection and the protocol's parsers): an ADD costs a bare Node start
// plus the daemon's work. Everything else (the other commands, a delegated IPAM, node_socket
// none, no daemon) goes on to the plugin's own `run`.
//
// When to fall back, as for the datastore-only session (./client.ts): before the request is
// written (no socket file, connection refused or denied, no connection in time), or when the
// daemon answers that nothing was done (NotHere: it cannot run it as the plugin would;
// Unsupported or BadRequest: an older daemon without `cni.run`). Once the request is written,
// a lost or late answer is an error (11, try again later), never a second run here: the
// daemon may have done the work (the runtime's DEL of a failed ADD releases it).
import { existsSync, statSync } from 'node:fs';
import type { Writer } from '../commands/skel.js';
import type { ErrorCodeValue } from '../spec/errors.js';
import { CniError, ErrorCode } from '../spec/errors.js';
import { Connection, NodeFailure, NodeLostError } from './connection.js';
import type { CniRequestOf } from './protocol.js';
import { CNI_PROTOCOL, DEFAULT_NODE_SOCKET, ServiceCode } from './protocol.js';

export interface DelegateOptions {
  /** How long connecting may take. [Default: 1000 ms] */
  readonly connectTimeoutMs?: number;
  /** How long the daemon may take to run the invocation. [Default: 120000 ms] */
  readonly runTimeoutMs?: number;
}

/** The environment the daemon is sent: what the plugin's `run` reads, and no more. */
const SENT_ENV = /^(CNI_|TABBY_|K8S_|ETCD_|DATASTORE_TYPE$|KUBECONFIG$)/;

/** The request, or undefined when this invocation is not the daemon's to run. */
function request(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
):
  | { readonly socket: string; readonly request: CniRequestOf<'cni.run'>; readonly cniVersion: string }
  | undefined {
  const cmd = env['CNI_COMMAND'];
  if (cmd !== 'ADD' && cmd !== 'DEL' && cmd !== 'CHECK') return undefined;
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined; // the plugin's own parser names the problem
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return undefined;
  const c = conf as Record<string, unknown>;
  const socket = c['node_socket'];
  if (socket === 'none' || (socket !== undefined && socket !== null && typeof socket !== 'string'))
    return undefined;
  const ipam = c['ipam'];
  if (ipam !== undefined && ipam !== null && (ipam as { type?: unknown }).type !== 'tabby-ipam')
    return undefined;
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && SENT_ENV.test(k)) sent[k] = v;
  const netns = env['CNI_NETNS'] ?? '';
  let hostNetns: number;
  try {
    hostNetns = statSync('/proc/self/ns/net').ino;
  } catch {
    return undefined; // not Linux
  }
  return {
    socket: typeof socket === 'string' && socket !== '' ? socket : DEFAULT_NODE_SOCKET,
    cniVersion: typeof c['cniVersion'] === 'string' ? c['cniVersion'] : '1.1.0',
    request: {
      cmd: 'cni.run',
      protocol: CNI_PROTOCOL,
      env: sent,
      stdin,
      netnsVisible: netns !== '' && existsSync(netns),
      hostNetns,
    },
  };
}

/**
 * Runs the invocation in tabby-node: resolves with the exit code once its output is written,
 * or undefined (nothing written, nothing done) when the plugin must run it itself.
 */
export async function delegate(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
  stdout: Writer,
  stderr: Writer,
  opts: DelegateOptions = {},
): Promise<number | undefined> {
  const req = request(env, stdin);
  if (req === undefined) return undefined;
  let c: Connection;
  try {
    c = await Connection.connect(req.socket, opts.connectTimeoutMs ?? 1000);
  } catch {
    return undefined; // nothing was sent: the plugin does the work
  }
  try {
    const a = await c.request(req.request, opts.runTimeoutMs ?? 120_000);
    stderr.write(a.stderr);
    stdout.write(a.stdout);
    return a.exitCode;
  } catch (e) {
    if (e instanceof NodeFailure) {
      // Nothing done: declined, or an older daemon that does not know cni.run.
      if (
        e.code === ServiceCode.NotHere ||
        e.code === ServiceCode.Unsupported ||
        e.code === ServiceCode.BadRequest
      )
        return undefined;
      return failed(
        stdout,
        req.cniVersion,
        ErrorCode.Internal,
        'tabby-node failed to run the invocation',
        e.message,
      );
    }
    if (e instanceof NodeLostError)
      return failed(
        stdout,
        req.cniVersion,
        ErrorCode.TryAgainLater,
        'tabby-node stopped answering',
        `${e.message}; it may have done part of the work: the runtime's DEL of this container undoes it`,
      );
    return failed(
      stdout,
      req.cniVersion,
      ErrorCode.Internal,
      "tabby-node's answer was not understood",
      String(e),
    );
  } finally {
    c.close();
  }
}

function failed(
  stdout: Writer,
  cniVersion: string,
  code: ErrorCodeValue,
  msg: string,
  details: string,
): number {
  stdout.write(`${JSON.stringify(new CniError(code, msg, details).toJSON(cniVersion))}\n`);
  return 1;
}
