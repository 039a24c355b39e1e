// The executables' wiring: real dependencies for `run` and `runIpam`. Everything heavy (the
// datastore and its backends) is imported only when a command needs it.
import type { Dataplane } from './commands/interfaces.js';
import type { PluginDeps } from './commands/run.js';
import { run } from './commands/run.js';
import type { RunIo } from './commands/skel.js';
import { CniError, ErrorCode } from './spec/errors.js';

export const NODENAME_FILE = '/etc/tabby/nodename';

/** The node's name: the first line of /etc/tabby/nodename (written by the node daemon), else the hostname. */
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
 * The kernel dataplane. packages/netlink (in progress) provides it; until it is wired here
 * ADD, DEL and CHECK fail with 105 and say why, while VERSION, STATUS and GC work.
 */
export function kernelDataplane(): Promise<Dataplane> {
  return Promise.reject(
    new CniError(
      ErrorCode.DataplaneFailed,
      'no kernel dataplane in this build',
      'the rtnetlink Dataplane (packages/netlink) is not wired into the tabby plugin yet',
    ),
  );
}

export function tabbyDeps(env: Readonly<Record<string, string | undefined>>): PluginDeps {
  return {
    dataplane: kernelDataplane,
    tabbyIpam: async (conf, log) => {
      const ipam = conf.ipam;
      if (ipam === undefined || 'delegated' in ipam) throw new Error('tabbyIpam called for a delegated IPAM');
      const { openDatastoreIpam } = await import('./ipam/datastore-client.js');
      return openDatastoreIpam(conf.datastore, ipam, env, log);
    },
    nodename: () => defaultNodename(),
  };
}

export function mainTabby(io: RunIo): Promise<number> {
  return run(io, tabbyDeps(io.env));
}

export async function mainTabbyIpam(io: RunIo): Promise<number> {
  const [{ runIpam }, { openDatastoreIpam }] = await Promise.all([
    import('./ipam/tabby-ipam.js'),
    import('./ipam/datastore-client.js'),
  ]);
  return runIpam(io, {
    tabbyIpam: (conf, ipam, log) => openDatastoreIpam(conf.datastore, ipam, io.env, log),
    nodename: () => defaultNodename(),
  });
}
