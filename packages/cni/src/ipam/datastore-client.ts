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
  EndpointKey,
  EndpointStore,
  IpamAllocation,
  IpamClient,
  IpamRequest,
  IpamStatus,
  NamespaceLabels,
  StoredEndpoint,
  WorkloadEndpointDoc,
} from '../commands/interfaces.js';
import { LABEL_NETWORK } from '../commands/endpoint.js';
import type { Log } from '../commands/context.js';
import type { DatastoreSettings, TabbyIpamConf } from '../spec/config.js';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';

const NO_ADDRESS = new Set(['PoolExhausted', 'NoEligiblePool', 'MaxBlocksReached']);
const TRANSIENT = new Set(['RetriesExhausted', 'Unavailable', 'Conflict']);

/** A datastore or IPAM error as the runtime should see it: 101, 11 (retry) or 102. */
export function ipamError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  const text = errorText(e);
  if (typeof code === 'string' && NO_ADDRESS.has(code))
    return new CniError(ErrorCode.NoAddress, `${what}: no address available`, text, { cause: e });
  if (typeof code === 'string' && TRANSIENT.has(code))
    return new CniError(ErrorCode.TryAgainLater, `${what}: the datastore is busy or unreachable`, text, {
      cause: e,
    });
  return new CniError(ErrorCode.IpamRefused, `${what} failed`, text, { cause: e });
}

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
    const pools = [...this.conf.ipv4Pools, ...this.conf.ipv6Pools];
    try {
      const r = await this.ipam.autoAssign({
        handleId: req.handle,
        num4: this.conf.assignIpv4 ? 1 : 0,
        num6: this.conf.assignIpv6 ? 1 : 0,
        node: req.node,
        attrs: req.attrs,
        ...(pools.length === 0 ? {} : { pools }),
        ...(req.namespaceLabels === undefined ? {} : { namespaceLabels: req.namespaceLabels }),
      });
      return { addresses: [...r.ipv4, ...r.ipv6].map((a) => withPrefix(a.ip)) };
    } catch (e) {
      throw ipamError(e, `IPAM allocation for ${req.handle}`);
    }
  }

  async release(handle: string): Promise<void> {
    try {
      await this.ipam.releaseByHandle(handle);
    } catch (e) {
      throw ipamError(e, `IPAM release of ${handle}`);
    }
  }

  async addresses(handle: string): Promise<readonly string[]> {
    try {
      return (await this.ipam.ipsByHandle(handle)).map((a) => withPrefix(a.ip));
    } catch (e) {
      throw ipamError(e, `IPAM lookup of ${handle}`);
    }
  }

  async listHandles(network: string): Promise<readonly string[]> {
    try {
      const { items } = await this.backend.list('IPAMHandle');
      const p = `${network}.`;
      return items
        .map((h) => (h.spec as { handleID: string }).handleID)
        .filter((h) => h.startsWith(p) && h.length > p.length);
    } catch (e) {
      throw ipamError(e, `listing IPAM handles of ${network}`);
    }
  }

  async status(): Promise<IpamStatus> {
    let u;
    try {
      u = await this.ipam.getUtilization();
    } catch (e) {
      return { ok: false, code: 50, msg: 'the datastore is unreachable', details: errorText(e) };
    }
    const families = [...(this.conf.assignIpv4 ? [4] : []), ...(this.conf.assignIpv6 ? [6] : [])];
    for (const f of families) {
      const wanted = f === 4 ? this.conf.ipv4Pools : this.conf.ipv6Pools;
      const pools = u.pools.filter(
        (p) =>
          !p.disabled &&
          (p.cidr.includes(':') ? 6 : 4) === f &&
          (wanted.length === 0 || wanted.includes(p.cidr)),
      );
      if (pools.length === 0)
        return { ok: false, code: 50, msg: `no enabled IPv${f} pool`, details: 'ADD cannot get an address' };
      if (pools.every((p) => p.free === 0))
        return {
          ok: false,
          code: 50,
          msg: `IPv${f} pools exhausted`,
          details: pools.map((p) => `${p.name} (${p.cidr}): ${p.inUse} of ${p.capacity} in use`).join('; '),
        };
    }
    return { ok: true };
  }

  close(): Promise<void> {
    return this.ownsBackend ? this.backend.close() : Promise.resolve();
  }
}

/** WorkloadEndpoints through the validating Datastore. */
export class DatastoreEndpoints implements EndpointStore {
  constructor(private readonly ds: Datastore) {}

  async put(wep: WorkloadEndpointDoc): Promise<void> {
    // apply: create, or replace what a previous ADD of the same pod left.
    await this.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name: wep.name, namespace: wep.namespace, labels: wep.labels },
      spec: wep.spec,
    });
  }

  async get(key: EndpointKey): Promise<WorkloadEndpointDoc | undefined> {
    const w = await this.ds.get('WorkloadEndpoint', key.name, key.namespace);
    if (w === undefined) return undefined;
    const s = w.spec;
    return {
      namespace: w.metadata.namespace ?? key.namespace,
      name: w.metadata.name,
      labels: w.metadata.labels ?? {},
      spec: {
        orchestrator: s.orchestrator === 'k8s' ? 'k8s' : 'cni',
        node: s.node ?? '',
        containerID: s.containerID ?? '',
        ...(s.pod === undefined ? {} : { pod: s.pod }),
        ...(s.workload === undefined ? {} : { workload: s.workload }),
        endpoint: s.endpoint ?? '',
        interfaceName: s.interfaceName ?? '',
        ipNetworks: s.ipNetworks ?? [],
        mac: s.mac ?? '',
      },
    };
  }

  async delete(key: EndpointKey): Promise<'deleted' | 'absent'> {
    try {
      await this.ds.delete('WorkloadEndpoint', key.name, { namespace: key.namespace });
      return 'deleted';
    } catch (e) {
      if ((e as { code?: unknown }).code === 'NotFound') return 'absent';
      throw e;
    }
  }

  async list(node: string, network: string): Promise<readonly StoredEndpoint[]> {
    const { items } = await this.ds.list('WorkloadEndpoint');
    return items
      .filter((w) => w.spec.node === node && w.metadata.labels?.[LABEL_NETWORK] === network)
      .map((w) => ({
        namespace: w.metadata.namespace ?? 'default',
        name: w.metadata.name,
        containerID: w.spec.containerID ?? '',
        endpoint: w.spec.endpoint ?? '',
      }));
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
  const backend = await openConfigured(settings, env);
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
