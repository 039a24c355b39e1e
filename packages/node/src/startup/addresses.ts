// The node's BGP addresses: what the host shows (detectAddresses: the configured
// autodetection method's result, the interfaces) and what the Node gets from that and from
// what it already has (configureAddresses, Calico's configureIPsAndSubnets, startup.go:604).
//
// Calico's rules, in short:
// - IPv4 is autodetected when IP=autodetect, or when IP is unset and the Node has no IPv4
//   address yet; IPv6 only when IP6=autodetect.
// - A failed autodetection keeps the Node's address if it has one, and is an error otherwise.
// - IP/IP6=none never removes an address the Node already has (startup.go:641, 674): the
//   address stays until someone edits the Node.
// - An explicit IPv4 address without a prefix length takes the prefix of the interface that
//   has it (GetLocalCIDR); an IPv6 one is taken as given (/128 without a prefix).
// - spec.interfaces lists the host's interfaces (except Calico's default exclusions) with the
//   addresses of the families set explicitly in IP/IP6; nothing when neither is.
import type { NodeSpec } from '@tabby/datastore';
import { formatIp } from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';
import type { Detection, KubernetesNodeAddress } from './autodetect.js';
import { autodetect, describeDetection, formatAutodetectionMethod, localCidr } from './autodetect.js';
import { AutodetectionError } from './errors.js';
import type { HostInterface, HostNetwork } from './host-network.js';
import { DEFAULT_INTERFACES_TO_EXCLUDE, filterInterfaces } from './interfaces.js';
import { formatIpNet, parseIpNet, sameAddress } from './ipnet.js';
import type { AddressSetting, Settings } from './settings.js';

/** What the host shows, read once: start-up decides from it (again on a compare-and-swap retry). */
export interface HostAddresses {
  readonly interfaces: readonly HostInterface[];
  /** The IPv4 autodetection result; undefined when the settings never autodetect IPv4. */
  readonly ipv4: Detection | undefined;
  readonly ipv6: Detection | undefined;
}

/** Is the family's address ever autodetected with these settings (whatever the Node holds)? */
const mayAutodetect = (s: AddressSetting, family: 4 | 6): boolean =>
  s.mode === 'autodetect' || (family === 4 && s.mode === 'unset');

/**
 * Reads the host's interfaces and runs the configured autodetection methods that the
 * settings may need. With CALICO_NETWORKING_BACKEND=none the Node gets no addresses and
 * nothing is read. A method that finds nothing is a result here; whether it is an error
 * depends on the Node (configureAddresses).
 */
export async function detectAddresses(
  settings: Settings,
  host: HostNetwork,
  kubernetesAddresses: readonly KubernetesNodeAddress[] | undefined,
  log: Logger,
): Promise<HostAddresses> {
  if (settings.networkingBackend === 'none') return { interfaces: [], ipv4: undefined, ipv6: undefined };
  const interfaces = await host.interfaces();
  const ctx = { interfaces, host, kubernetesAddresses };
  const run = async (family: 4 | 6): Promise<Detection | undefined> => {
    const s = family === 4 ? settings.ipv4 : settings.ipv6;
    if (!mayAutodetect(s, family)) return undefined;
    const m = family === 4 ? settings.ipv4AutodetectionMethod : settings.ipv6AutodetectionMethod;
    const d = await autodetect(m, family, ctx);
    log.debug(
      { family, method: formatAutodetectionMethod(m), found: d.ok, result: describeDetection(d) },
      'address autodetection',
    );
    return d;
  };
  return { interfaces, ipv4: await run(4), ipv6: await run(6) };
}

/** Calico's validateIP (startup.go:762): an address on no interface of this host is worth a warning. */
function validateIp(address: string, interfaces: readonly HostInterface[], log: Logger): void {
  const n = parseIpNet(address);
  if (n === undefined) return;
  for (const i of filterInterfaces(interfaces, undefined, undefined, [n.address.family]))
    for (const c of i.cidrs) if (sameAddress(c.address, n.address)) return;
  log.warn(
    { address, family: n.address.family },
    `unable to confirm IPv${n.address.family} address ${formatIp(n.address)} is assigned to this host`,
  );
}

type Bgp = NonNullable<NodeSpec['bgp']>;

function configureFamily(
  bgp: Bgp,
  family: 4 | 6,
  settings: Settings,
  host: HostAddresses,
  log: Logger,
): void {
  const field = family === 4 ? 'ipv4Address' : 'ipv6Address';
  const s = family === 4 ? settings.ipv4 : settings.ipv6;
  const old = bgp[field] ?? '';
  const env = family === 4 ? 'IP' : 'IP6';
  if (s.mode === 'autodetect' || (family === 4 && s.mode === 'unset' && old === '')) {
    const d = family === 4 ? host.ipv4 : host.ipv6;
    const method = formatAutodetectionMethod(
      family === 4 ? settings.ipv4AutodetectionMethod : settings.ipv6AutodetectionMethod,
    );
    if (d?.ok === true) {
      bgp[field] = formatIpNet(d.cidr);
      log.info(
        { family, method, address: bgp[field], interface: d.interface },
        `using autodetected IPv${family} address`,
      );
    } else if (old === '') {
      throw new AutodetectionError(family, method, d?.reason ?? 'autodetection did not run');
    } else {
      log.warn(
        { family, method, reason: d?.reason, address: old },
        `autodetection of an IPv${family} address failed, keeping the existing one`,
      );
      validateIp(old, host.interfaces, log);
    }
  } else if (s.mode === 'none' && old !== '') {
    log.info(
      { family, address: old },
      `${env}=none: IPv${family} autodetection is off, keeping the existing address`,
    );
    validateIp(old, host.interfaces, log);
  } else if (s.mode !== 'none') {
    if (s.mode === 'address') {
      // IPv4 takes the interface's prefix (startup.go:647); IPv6 is used as given (startup.go:679).
      bgp[field] = formatIpNet(family === 4 ? localCidr(s.text, 4, host.interfaces).cidr : s.net);
      log.info({ family, address: bgp[field] }, `using IPv${family} address from ${env}`);
    }
    if (bgp[field] !== undefined && bgp[field] !== '') validateIp(bgp[field], host.interfaces, log);
  }
}

const set = (s: AddressSetting): boolean => s.mode === 'autodetect' || s.mode === 'address';

/** spec.interfaces as Calico writes it (startup.go:684-722). */
export function nodeInterfaces(
  settings: Settings,
  interfaces: readonly HostInterface[],
): NonNullable<NodeSpec['interfaces']> | undefined {
  const families: (4 | 6)[] = [];
  if (set(settings.ipv4)) families.push(4);
  if (set(settings.ipv6)) families.push(6);
  if (families.length === 0) return undefined;
  const list = filterInterfaces(interfaces, undefined, DEFAULT_INTERFACES_TO_EXCLUDE, families)
    // a stable sort by name, over Calico's reversed order (startup.go:704)
    .map((i, pos) => ({ i, pos }))
    .sort((a, b) => (a.i.name < b.i.name ? -1 : a.i.name > b.i.name ? 1 : a.pos - b.pos))
    .map(({ i }) =>
      i.cidrs.length === 0
        ? { name: i.name }
        : { name: i.name, addresses: i.cidrs.map((c) => formatIp(c.address)) },
    );
  return list.length === 0 ? undefined : list;
}

/**
 * Sets spec.bgp's addresses and spec.interfaces (spec.bgp must exist). Returns whether
 * either address or the interfaces changed, which is when Calico checks for conflicts and
 * writes the Node. Throws AutodetectionError when a family that must have an address has
 * none; the spec then holds what was decided before (Calico clears and writes that).
 */
export function configureAddresses(
  spec: NodeSpec,
  settings: Settings,
  host: HostAddresses,
  log: Logger,
): boolean {
  const bgp = spec.bgp!;
  const old4 = bgp.ipv4Address ?? '';
  const old6 = bgp.ipv6Address ?? '';
  const oldInterfaces = JSON.stringify(spec.interfaces ?? []);
  configureFamily(bgp, 4, settings, host, log);
  configureFamily(bgp, 6, settings, host, log);
  const ifs = nodeInterfaces(settings, host.interfaces);
  if (ifs === undefined) delete spec.interfaces;
  else spec.interfaces = ifs;
  for (const f of ['ipv4Address', 'ipv6Address'] as const) if (bgp[f] === '') delete bgp[f];
  if ((bgp.ipv4Address ?? '') !== old4 || (bgp.ipv6Address ?? '') !== old6) return true;
  return JSON.stringify(ifs ?? []) !== oldInterfaces;
}
