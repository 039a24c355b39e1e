// The IpamClient over @tabby/datastore: its Ipam (Calico's block algorithm with
// compare-and-swap) on the backend the config names. The datastore package is imported
// only when a command needs it, so VERSION and a delegated-IPAM ADD never load it.
import type { Backend, Ipam } from '@tabby/datastore';
import type { IpamAllocation, IpamClient, IpamRequest, IpamStatus } from '../commands/interfaces.js';
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
    return this.backend.close();
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
  const ds = await import('@tabby/datastore');
  let cfg;
  try {
    cfg = settings ?? ds.datastoreConfig(env);
  } catch (e) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network config: datastore', errorText(e));
  }
  let backend: Backend;
  try {
    backend = await ds.openBackend(cfg);
  } catch (e) {
    throw ipamError(e, `opening the ${cfg.type} datastore`);
  }
  const ipam = new ds.Ipam({ backend, log: (l, m) => log(l, `ipam: ${m}`) });
  return new DatastoreIpamClient(ipam, backend, ipamConf);
}
