// The default IP pools (Calico's configureIPPools, startup.go:902): when no pool of a family
// exists, one is created from the CALICO_IPVxPOOL_* settings, named default-ipv4-ippool /
// default-ipv6-ippool. When a pool of the family exists, nothing is created or changed,
// whatever the settings say: Calico does not even say so; Tabby logs a warning naming the
// settings that went unused.
//
// The CIDR, when not set: kubeadm's podSubnet (kubeadm-config ConfigMap) if there is one;
// else for IPv4 192.168.0.0/16, or the first of 172.16-31.0.0/16 that holds no address of
// this host (poolselector.go); for IPv6 a random unique local /48 (RFC 4193).
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import type { Datastore, IPPool, IPPoolSpec } from '@tabby/datastore';
import {
  AlreadyExistsError,
  API_VERSION,
  cidrContainsIp,
  formatCidr,
  parseCidr,
  parseIp,
} from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';
import type { HostInterface } from './host-network.js';
import type { PoolSettings, Settings } from './settings.js';
import { DEFAULT_IPV4_POOL_CIDR } from './settings.js';

export const DEFAULT_IPV4_POOL_NAME = 'default-ipv4-ippool';
export const DEFAULT_IPV6_POOL_NAME = 'default-ipv6-ippool';

/** poolselector.go:28: the fallbacks when a host address is inside 192.168.0.0/16. */
const FALLBACK_IPV4_POOLS = Array.from({ length: 16 }, (_, i) => `172.${16 + i}.0.0/16`);

export interface DefaultPoolsOptions {
  readonly datastore: Datastore;
  readonly settings: Settings;
  /** The host's interfaces (for the IPv4 default that avoids the host's own addresses). */
  readonly interfaces: () => Promise<readonly HostInterface[]>;
  /** The kubeadm-config ConfigMap's data in kube-system, when there is one. */
  readonly kubeadmConfig?: Readonly<Record<string, string>> | undefined;
  /** /proc/sys/net/ipv6 exists (startup_linux.go:89); with FELIX_IPV6SUPPORT it gates the IPv6 pool. */
  readonly ipv6Available: boolean;
  /** Secure random bytes (the IPv6 ULA prefix). */
  readonly randomBytes?: (n: number) => Uint8Array;
  readonly log: Logger;
}

export interface DefaultPools {
  /** The pools created now. */
  readonly created: readonly IPPool[];
  /** Why no IPv4 / IPv6 pool was created, when none was. */
  readonly skipped: { readonly 4?: string; readonly 6?: string };
}

/**
 * Calico's extractKubeadmCIDRs (startup.go:1384): the first `podSubnet: ` line of the
 * ConfigMap's data (keys in sorted order; Go's map order is random), split on commas, the
 * first IPv4 and first IPv6 CIDR; parsing stops at the first part that is not a CIDR.
 */
export function kubeadmPodCidrs(data: Readonly<Record<string, string>>): { 4?: string; 6?: string } {
  let line: string | undefined;
  for (const key of Object.keys(data).sort()) {
    const m = /podSubnet: (.*)/.exec(data[key]!);
    if (m !== null) {
      line = m[1]!;
      break;
    }
  }
  const out: { 4?: string; 6?: string } = {};
  if (line === undefined) return out;
  for (const part of line.split(',')) {
    const c = parseCidr(part);
    if (c === undefined) break;
    out[c.family] ??= part;
    if (out[4] !== undefined && out[6] !== undefined) break;
  }
  return out;
}

/**
 * Calico's findAvailableCIDR (poolselector.go:62): the preferred pool unless it contains an
 * address of this host, then the first fallback that contains none, else the preferred one.
 */
export function defaultIpv4PoolCidr(hostAddresses: readonly string[]): string {
  const addrs = hostAddresses.map((a) => parseIp(a)).filter((a) => a?.family === 4);
  const free = (cidr: string): boolean => !addrs.some((a) => cidrContainsIp(parseCidr(cidr)!, a!));
  if (free(DEFAULT_IPV4_POOL_CIDR)) return DEFAULT_IPV4_POOL_CIDR;
  return FALLBACK_IPV4_POOLS.find(free) ?? DEFAULT_IPV4_POOL_CIDR;
}

/** Calico's GenerateIPv6ULAPrefix (startup.go:888): fd00::/8 with 40 random bits, a /48. */
export function ipv6UlaPrefix(randomBytes: (n: number) => Uint8Array): string {
  const r = randomBytes(5);
  const b = [0xfd, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!];
  const hex = (i: number): string => ((b[i]! << 8) | b[i + 1]!).toString(16);
  return formatCidr(parseCidr(`${hex(0)}:${hex(2)}:${hex(4)}::/48`)!);
}

function poolResource(name: string, cidr: string, p: PoolSettings, family: 4 | 6): IPPool {
  const spec: IPPoolSpec = {
    cidr,
    blockSize: p.blockSize,
    // startup.go:1073: an IPv6 pool never gets IPIP.
    ipipMode: family === 4 ? p.ipipMode : 'Never',
    vxlanMode: p.vxlanMode,
    natOutgoing: p.natOutgoing,
    disableBGPExport: p.disableBGPExport,
  };
  if (p.nodeSelector !== undefined) spec.nodeSelector = p.nodeSelector;
  return { apiVersion: API_VERSION, kind: 'IPPool', metadata: { name }, spec };
}

/** Creates the default pools that are missing. Throws the datastore's errors. */
export async function ensureDefaultPools(opts: DefaultPoolsOptions): Promise<DefaultPools> {
  const { settings, log } = opts;
  if (settings.noDefaultPools) {
    log.info({}, 'NO_DEFAULT_POOLS: skipping IP pool configuration');
    return { created: [], skipped: { 4: 'NO_DEFAULT_POOLS is true', 6: 'NO_DEFAULT_POOLS is true' } };
  }
  const kubeadm = opts.kubeadmConfig === undefined ? {} : kubeadmPodCidrs(opts.kubeadmConfig);

  const { items } = await opts.datastore.list('IPPool');
  const present = { 4: [] as string[], 6: [] as string[] };
  for (const p of items) {
    const c = parseCidr(p.spec.cidr);
    if (c !== undefined) present[c.family].push(p.metadata.name);
  }

  const created: IPPool[] = [];
  const skipped: { 4?: string; 6?: string } = {};
  for (const family of [4, 6] as const) {
    const p = family === 4 ? settings.ipv4Pool : settings.ipv6Pool;
    const name = family === 4 ? DEFAULT_IPV4_POOL_NAME : DEFAULT_IPV6_POOL_NAME;
    if (!p.enabled) {
      skipped[family] = `CALICO_IPV${family}POOL_CIDR is none`;
      log.info({ family }, `skipping IPv${family} pool configuration`);
      continue;
    }
    if (present[family].length > 0) {
      skipped[family] = `IPv${family} pools exist: ${present[family].join(', ')}`;
      if (p.given.length > 0)
        log.warn(
          { family, pools: present[family], unused: p.given },
          `IPv${family} pools exist already, so the default pool settings are not used: ${p.given.join(', ')}`,
        );
      continue;
    }
    if (family === 6 && !(settings.ipv6Support && opts.ipv6Available)) {
      skipped[6] = settings.ipv6Support ? 'IPv6 is not available on this host' : 'FELIX_IPV6SUPPORT is false';
      log.info({ family }, `not creating an IPv6 pool: ${skipped[6]}`);
      continue;
    }
    let cidr = p.cidr;
    if (cidr === undefined && kubeadm[family] !== undefined) {
      cidr = formatCidr(parseCidr(kubeadm[family])!);
      log.info({ family, cidr }, `found the IPv${family} pod subnet in the kubeadm config map`);
    }
    if (cidr === undefined) {
      if (family === 4) {
        const addrs = (await opts.interfaces()).flatMap((i) => i.addresses.map((a) => a.address));
        cidr = defaultIpv4PoolCidr(addrs);
      } else cidr = ipv6UlaPrefix(opts.randomBytes ?? ((n) => cryptoRandomBytes(n)));
      log.info({ family, cidr }, `selected default IPv${family} pool`);
    }
    const pool = poolResource(name, cidr, p, family);
    try {
      // Another node may create it first (startup.go:1127): that is fine.
      created.push((await opts.datastore.create(pool)) as IPPool);
      log.info(
        {
          family,
          pool: name,
          cidr,
          ipipMode: pool.spec.ipipMode,
          vxlanMode: pool.spec.vxlanMode,
          natOutgoing: pool.spec.natOutgoing,
          disableBGPExport: pool.spec.disableBGPExport,
        },
        `created the default IPv${family} pool`,
      );
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
      skipped[family] = `${name} was created by another node meanwhile`;
    }
  }
  return { created, skipped };
}
