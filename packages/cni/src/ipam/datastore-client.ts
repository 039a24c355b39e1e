// The IpamClient over @tabby/datastore: its Ipam (Calico's block algorithm with
// compare-and-swap) on the backend the config names. This module is imported only when a
// command needs the datastore (main.ts), so VERSION and a delegated-IPAM ADD never load it.
// Named imports from the import-light entry, not the package's namespace: the bundle then
// holds only what is used here (@tabby/datastore declares no side effects), not the CLI,
// CRDs or manifest reading, nor the yaml library they bring.
import type { Backend } from '@tabby/datastore/core';
import {
  Datastore,
  datastoreConfig,
  Ipam,
  openBackend,
  readNamespaceLabels as readNamespace,
} from '@tabby/datastore/core';
import type {
  DatastoreSession,
  IpamAllocation,
  IpamClient,
  IpamRequest,
  IpamStatus,
  NamespaceLabels,
} from '../commands/interfaces.js';
import type { Log } from '../commands/context.js';
import { ipamError } from '../commands/errors.js';
import { assignmentOf } from '../commands/ipam-ops.js';
import { poolStatus } from '../commands/status.js';
import type { DatastoreSettings, TabbyIpamConf } from '../spec/config.js';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import {
  assign,
  DatastoreEndpoints,
  handleAddresses,
  networkHandles,
  poolRooms,
  release,
} from './operations.js';

export { ipamError } from '../commands/errors.js';
export { DatastoreEndpoints } from './operations.js';

const withPrefix = (ip: string): string => `${ip}/${ip.includes(':') ? 128 : 32}`;

export class DatastoreIpamClient implements IpamClient {
  constructor(
    private readonly ipam: Ipam,
    private readonly backend: Backend,
    private readonly conf: TabbyIpamConf,
    /** False when a DatastoreSession owns the backend and closes it. */
    private readonly ownsBackend = true,
  ) {}

  async allocate(req: IpamRequest): Promise<IpamAllocation> {
    try {
      const ips = await assign(this.ipam, assignmentOf(req, this.conf), req.namespaceLabels);
      return { addresses: ips.map(withPrefix) };
    } catch (e) {
      throw ipamError(e, `IPAM allocation for ${req.handle}`);
    }
  }

  async release(handle: string): Promise<void> {
    try {
      await release(this.ipam, handle);
    } catch (e) {
      throw ipamError(e, `IPAM release of ${handle}`);
    }
  }

  async addresses(handle: string): Promise<readonly string[]> {
    try {
      return (await handleAddresses(this.ipam, handle)).map(withPrefix);
    } catch (e) {
      throw ipamError(e, `IPAM lookup of ${handle}`);
    }
  }

  async listHandles(network: string): Promise<readonly string[]> {
    try {
      return await networkHandles(this.backend, network);
    } catch (e) {
      throw ipamError(e, `listing IPAM handles of ${network}`);
    }
  }

  async status(): Promise<IpamStatus> {
    try {
      return poolStatus(await poolRooms(this.ipam), this.conf);
    } catch (e) {
      return { ok: false, code: 50, msg: 'the datastore is unreachable', details: errorText(e) };
    }
  }

  close(): Promise<void> {
    return this.ownsBackend ? this.backend.close() : Promise.resolve();
  }
}

/**
 * One backend connection for the invocation (the config's datastore, or the environment's
 * as for the tabby CLI), shared by Tabby's IPAM and the WorkloadEndpoints.
 */
export async function openDatastoreSession(
  settings: DatastoreSettings | undefined,
  env: Readonly<Record<string, string | undefined>>,
  log: Log,
): Promise<DatastoreSession> {
  return datastoreSession(await openConfigured(settings, env), log);
}

/** The session over an open backend; closing the session closes the backend. */
export function datastoreSession(backend: Backend, log: Log): DatastoreSession {
  const store = new Datastore(backend, {
    onInvalid: (issues) =>
      log(
        'warn',
        `skipping an invalid stored object: ${issues.map((i) => `${i.path} ${i.reason}`).join('; ')}`,
      ),
  });
  return {
    ipam: (conf) =>
      new DatastoreIpamClient(
        new Ipam({ backend, log: (l, m) => log(l, `ipam: ${m}`) }),
        backend,
        conf,
        false,
      ),
    endpoints: new DatastoreEndpoints(store),
    close: () => backend.close(),
  };
}

async function openConfigured(
  settings: DatastoreSettings | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Backend> {
  let cfg;
  try {
    cfg = settings ?? datastoreConfig(env);
  } catch (e) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network config: datastore', errorText(e));
  }
  try {
    return await openBackend(cfg);
  } catch (e) {
    throw ipamError(e, `opening the ${cfg.type} datastore`);
  }
}

/**
 * Opens the datastore the config names (or, without `datastore`, the one the environment
 * names as for the tabby CLI: DATASTORE_TYPE and friends, default the YAML directory).
 */
export async function openDatastoreIpam(
  settings: DatastoreSettings | undefined,
  ipamConf: TabbyIpamConf,
  env: Readonly<Record<string, string | undefined>>,
  log: Log,
): Promise<IpamClient> {
  const backend = await openConfigured(settings, env);
  const ipam = new Ipam({ backend, log: (l, m) => log(l, `ipam: ${m}`) });
  return new DatastoreIpamClient(ipam, backend, ipamConf);
}

/**
 * The real NamespaceReader: a GET of the Namespace from the API server the kubeconfig names,
 * with the Kubernetes client loaded only now. Fewer and shorter tries than the datastore's
 * defaults: a runtime waits on ADD, and retries it on 11.
 */
export async function readNamespaceLabels(kubeconfig: string, namespace: string): Promise<NamespaceLabels> {
  try {
    return await readNamespace(kubeconfig, namespace, { readAttempts: 3, requestTimeoutMs: 10_000 });
  } catch (e) {
    throw ipamError(e, `reading the labels of namespace ${namespace} (kubeconfig ${kubeconfig})`);
  }
}
