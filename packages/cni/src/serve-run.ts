// The daemon's half of `cni.run`: a whole ADD, DEL or CHECK run inside tabby-node, which has
// the datastore open, the netlink addon loaded and its code compiled, so the plugin process
// only starts Node, sends its environment and stdin, and prints the answer (node-api/delegate.ts).
// It is the plugin's own `run` with the daemon's dependencies: the kernel dataplane loaded
// once, and a node session whose requests are this daemon's CNI service called directly, so
// the IPAM writes queue with those of other plugins as they do over the socket and every
// error is the one the plugin would give in its own process.
//
// The daemon declines (ServiceCode.NotHere, nothing done; the plugin then runs it itself)
// when it could not do what the plugin would: a delegated IPAM plugin (it runs from the
// runtime's CNI_PATH, in the plugin's process), a config naming another datastore, a pod
// namespace file the plugin sees and the daemon does not (a daemon in a container without
// /var/run/netns mounted), or a plugin in another network namespace than the daemon's.
import { existsSync, statSync } from 'node:fs';
import type { Dataplane } from './commands/interfaces.js';
import { run } from './commands/run.js';
import { kernelDataplane } from './main.js';
import { isDelegated, parseNetConf } from './spec/config.js';
import { errorText } from './spec/errors.js';
import { NodeFailure, sessionOver } from './node-api/client.js';
import type { NodeTransport } from './node-api/client.js';
import type {
  CniAnswer,
  CniAnswers,
  CniCommandName,
  CniReply,
  CniRequest,
  CniRequestOf,
  DatastoreWhere,
} from './node-api/protocol.js';
import { CNI_PROTOCOL, sameDatastore, ServiceCode } from './node-api/protocol.js';

export interface ServeRunDeps {
  /** The daemon's CNI service: where the session's IPAM and endpoint requests go. */
  answer(req: CniRequest): Promise<CniReply>;
  /** The daemon's node (the plugin's nodename when its config names none). */
  readonly node: string;
  /** The daemon's datastore (null: not known, e.g. in-memory). */
  readonly datastore: DatastoreWhere | null;
  /** The kernel dataplane, loaded once by the daemon. */
  dataplane(): Promise<Dataplane>;
  /** The pod MTU file the daemon writes. */
  readonly mtuFile?: string;
  /** How long one service request may take (IPAM retries included). [Default: 30000 ms] */
  readonly requestTimeoutMs?: number;
}

/** `cni.run` declined: nothing was done, and the plugin runs the invocation itself. */
export class NotHere extends Error {
  override readonly name = 'NotHere';
  readonly code = ServiceCode.NotHere;
}

/** The kernel dataplane, loaded by the first invocation and kept (a failure is tried again next time). */
export function kernelDataplaneOnce(): () => Promise<Dataplane> {
  let loaded: Promise<Dataplane> | undefined;
  return () => {
    loaded ??= kernelDataplane().catch((e: unknown) => {
      loaded = undefined;
      throw e;
    });
    return loaded;
  };
}

/** The daemon's network namespace, as /proc/self/ns/net's inode (what the plugin sends as hostNetns). */
export const ownNetns = (): number => statSync('/proc/self/ns/net').ino;

/** The service called in-process: failures become NodeFailures, as they arrive over the socket. */
class Direct implements NodeTransport {
  readonly path = 'tabby-node (in-process)';
  constructor(private readonly deps: ServeRunDeps) {}
  async request<K extends CniCommandName>(req: CniRequestOf<K>): Promise<CniAnswer<K>> {
    const a = await this.deps.answer(req as CniRequest);
    if (!a.ok) throw new NodeFailure(a.code, a.error, a.pools ?? []);
    return a as CniAnswer<K>;
  }
  close(): void {}
}

/** Why the daemon cannot run this invocation as the plugin would, or undefined. */
function declined(req: CniRequestOf<'cni.run'>, deps: ServeRunDeps, hostNetns: number): string | undefined {
  if (req.protocol !== CNI_PROTOCOL)
    return `this tabby-node speaks CNI protocol ${CNI_PROTOCOL}, not ${req.protocol}`;
  const cmd = req.env['CNI_COMMAND'];
  if (cmd !== 'ADD' && cmd !== 'DEL' && cmd !== 'CHECK') return `${String(cmd)} is run by the plugin itself`;
  if (req.hostNetns !== hostNetns) return 'the plugin runs in another network namespace than tabby-node';
  const netns = req.env['CNI_NETNS'] ?? '';
  if (req.netnsVisible && netns !== '' && !existsSync(netns))
    return `the pod's network namespace ${netns} is not visible to tabby-node (mount the runtime's netns directory into its container)`;
  let conf;
  try {
    conf = parseNetConf(req.stdin);
  } catch {
    return undefined; // run() reports the config's error exactly as the plugin would
  }
  if (conf.ipam !== undefined && isDelegated(conf.ipam))
    return `the IPAM plugin ${conf.ipam.type} runs from CNI_PATH in the plugin's process`;
  if (
    conf.datastore !== undefined &&
    deps.datastore !== null &&
    !sameDatastore(deps.datastore, conf.datastore)
  )
    return "the config names another datastore than tabby-node's";
  return undefined;
}

/**
 * Runs one invocation as the plugin would, with the daemon's dependencies; NotHere (nothing
 * done) when the daemon cannot run it as the plugin would.
 */
export async function serveRun(
  req: CniRequestOf<'cni.run'>,
  deps: ServeRunDeps,
  hostNetns: number = ownNetns(),
): Promise<CniAnswers['cni.run']> {
  const why = declined(req, deps, hostNetns);
  if (why !== undefined) throw new NotHere(why);
  let dataplane: Dataplane;
  try {
    dataplane = await deps.dataplane();
  } catch (e) {
    throw new NotHere(`tabby-node has no kernel dataplane: ${errorText(e)}`);
  }
  let stdout = '';
  let stderr = '';
  const mtuFile = req.env['TABBY_MTU_FILE'] || deps.mtuFile;
  const session = sessionOver(new Direct(deps), deps.node, deps.requestTimeoutMs ?? 30_000);
  const exitCode = await run(
    {
      env: req.env,
      stdin: req.stdin,
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    },
    {
      dataplane: () => Promise.resolve(dataplane),
      // The session below always answers: the daemon's datastore is never opened again.
      datastore: () => Promise.reject(new Error('the node session serves this invocation')),
      node: () => Promise.resolve(session),
      nodename: () => Promise.resolve(deps.node),
      ...(mtuFile === undefined || mtuFile === '' ? {} : { mtuFile }),
      readNamespace: async (kubeconfig, namespace) => {
        const { readNamespaceLabels } = await import('./ipam/datastore-client.js');
        return readNamespaceLabels(kubeconfig, namespace);
      },
    },
  );
  return { stdout, exitCode, stderr };
}
