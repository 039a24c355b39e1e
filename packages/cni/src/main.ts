// The executables' wiring: real dependencies for `run` and `runIpam`. Everything heavy (the
// datastore and its backends) is imported only when a command needs it.
import type { Dataplane, NamespaceLabels } from './commands/interfaces.js';
import type { PluginDeps } from './commands/run.js';
import { run } from './commands/run.js';
import type { RunIo } from './commands/skel.js';
import { CniError, ErrorCode, errorText } from './spec/errors.js';

export const NODENAME_FILE = '/var/lib/calico/nodename';

/** The node's name: the first line of /var/lib/calico/nodename (written by tabby-node's start-up, as calico-node does), else the hostname. */
export async function defaultNodename(file = NODENAME_FILE): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    const n = (await readFile(file, 'utf8')).split('\n')[0]?.trim() ?? '';
    if (n !== '') return n;
  } catch {
    // absent: fall back to the hostname, as Calico does
  }
  const { hostname } = await import('node:os');
  return hostname();
}

/**
 * The kernel dataplane (rtnetlink through @tabby/netlink), loaded on first use so VERSION,
 * STATUS and GC never load the netlink addon. A missing or unloadable addon is a 105 that
 * says how to build it.
 */
export async function kernelDataplane(): Promise<Dataplane> {
  const [{ KernelDataplane }, { netlinkAddon }] = await Promise.all([
    import('./dataplane/kernel.js'),
    import('@tabby/netlink'),
  ]);
  try {
    netlinkAddon();
  } catch (e) {
    throw new CniError(ErrorCode.DataplaneFailed, 'no kernel dataplane', errorText(e), { cause: e });
  }
  return new KernelDataplane();
}

export function tabbyDeps(env: Readonly<Record<string, string | undefined>>): PluginDeps {
  const mtuFile = env['TABBY_MTU_FILE'];
  return {
    // Another place for the node daemon's MTU file (tests; a daemon run with another state dir).
    ...(mtuFile === undefined || mtuFile === '' ? {} : { mtuFile }),
    dataplane: kernelDataplane,
    datastore: async (conf, log) => {
      const { openDatastoreSession } = await import('./ipam/datastore-client.js');
      return openDatastoreSession(conf.datastore, env, log);
    },
    // The node daemon when it answers: then the datastore is never loaded.
    node: async (conf, log) => {
      if (conf.nodeSocket === false) return undefined;
      const { openNodeSession } = await import('./node-api/client.js');
      return openNodeSession(conf.nodeSocket, log, {}, conf.datastore);
    },
    nodename: () => defaultNodename(),
    readNamespace,
  };
}

/** The pod namespace's labels from the Kubernetes API; loaded only when a pool selects by namespace. */
async function readNamespace(kubeconfig: string, namespace: string): Promise<NamespaceLabels> {
  const { readNamespaceLabels } = await import('./ipam/datastore-client.js');
  return readNamespaceLabels(kubeconfig, namespace);
}

export function mainTabby(io: RunIo): Promise<number> {
  return run(io, tabbyDeps(io.env));
}

export async function mainTabbyIpam(io: RunIo): Promise<number> {
  const { runIpam } = await import('./ipam/tabby-ipam.js');
  return runIpam(io, {
    // The node daemon when it answers, else the datastore in this process.
    tabbyIpam: async (conf, ipam, log) => {
      if (conf.nodeSocket !== false) {
        const { openNodeIpam } = await import('./node-api/client.js');
        const client = await openNodeIpam(conf.nodeSocket, ipam, log, {}, conf.datastore);
        if (client !== undefined) return client;
      }
      const { openDatastoreIpam } = await import('./ipam/datastore-client.js');
      return openDatastoreIpam(conf.datastore, ipam, io.env, log);
    },
    nodename: () => defaultNodename(),
    readNamespace,
  });
}
