// IPv4/IPv6 address autodetection: Calico's methods (autodetection_methods.go, filtered.go,
// reachaddr.go at v3.31.7) over the host's interfaces and the kernel's route lookup.
//
// IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD:
//   first-found (default)          the first global unicast address on an interface not in
//                                  DEFAULT_INTERFACES_TO_EXCLUDE, interfaces walked from the
//                                  highest index down
//   interface=REGEX[,REGEX]        the first global unicast address on an interface whose
//                                  name matches one of the regexes
//   skip-interface=REGEX[,REGEX]   first-found, also skipping interfaces that match
//   cidr=CIDR[,CIDR]               the first global unicast address within one of the CIDRs
//   can-reach=DEST                 the source address the kernel picks to reach DEST (an
//                                  address or a host name), with that interface's prefix
//   kubernetes-internal-ip         the Kubernetes Node's first InternalIP of the family, with
//                                  the prefix of the interface that has it
import { cidrContainsIp, formatCidr, parseCidr, parseIp } from '@tabby/datastore';
import type { HostInterface, HostNetwork } from './host-network.js';
import type { Interface } from './interfaces.js';
import { compileInterfaceRegexes, DEFAULT_INTERFACES_TO_EXCLUDE, filterInterfaces } from './interfaces.js';
import type { IpNet } from './ipnet.js';
import { formatIpNet, isGlobalUnicast, parseIpNet, sameAddress } from './ipnet.js';

export type AutodetectionMethod =
  | { readonly kind: 'first-found' }
  | { readonly kind: 'interface'; readonly patterns: readonly string[] }
  | { readonly kind: 'skip-interface'; readonly patterns: readonly string[] }
  /** Network CIDRs, canonical (host bits cleared, as Go's ParseCIDR returns them). */
  | { readonly kind: 'cidr'; readonly cidrs: readonly string[] }
  | { readonly kind: 'can-reach'; readonly destination: string }
  | { readonly kind: 'kubernetes-internal-ip' };

/** Calico splits a method's list on commas with any space around them (autodetection_methods.go:49). */
const LIST_SEPARATOR = /\s*,\s*/;

/**
 * Parses a method as Calico does (autodetection_methods.go:40): the prefixes in Calico's
 * order; an empty value is first-found. Returns a reason when it is not one.
 */
export function parseAutodetectionMethod(text: string, family: 4 | 6): AutodetectionMethod | string {
  if (text === '' || text === 'first-found') return { kind: 'first-found' };
  if (text.startsWith('interface=')) {
    const patterns = text.slice('interface='.length).split(LIST_SEPARATOR);
    const r = compileInterfaceRegexes(patterns);
    return typeof r === 'string' ? r : { kind: 'interface', patterns };
  }
  if (text.startsWith('cidr=')) {
    const cidrs: string[] = [];
    for (const c of text.slice('cidr='.length).split(LIST_SEPARATOR)) {
      const p = parseCidr(c);
      if (p === undefined) return `${JSON.stringify(c)} is not a CIDR (in ${text})`;
      cidrs.push(formatCidr(p));
    }
    return { kind: 'cidr', cidrs };
  }
  if (text.startsWith('can-reach=')) {
    const destination = text.slice('can-reach='.length);
    if (destination === '') return 'can-reach= needs a destination address or host name';
    const a = parseIp(destination);
    if (a !== undefined && a.family !== family)
      return `can-reach destination ${destination} is not an IPv${family} address`;
    return { kind: 'can-reach', destination };
  }
  if (text.startsWith('skip-interface=')) {
    const patterns = text.slice('skip-interface='.length).split(LIST_SEPARATOR);
    const r = compileInterfaceRegexes(patterns);
    return typeof r === 'string' ? r : { kind: 'skip-interface', patterns };
  }
  // A prefix test, as Calico's (autodetection_methods.go:77).
  if (text.startsWith('kubernetes-internal-ip')) return { kind: 'kubernetes-internal-ip' };
  return (
    `${JSON.stringify(text)} is not an autodetection method (first-found, interface=REGEX, ` +
    'skip-interface=REGEX, cidr=CIDR, can-reach=DEST, kubernetes-internal-ip)'
  );
}

export function formatAutodetectionMethod(m: AutodetectionMethod): string {
  switch (m.kind) {
    case 'first-found':
    case 'kubernetes-internal-ip':
      return m.kind;
    case 'interface':
    case 'skip-interface':
      return `${m.kind}=${m.patterns.join(',')}`;
    case 'cidr':
      return `cidr=${m.cidrs.join(',')}`;
    case 'can-reach':
      return `can-reach=${m.destination}`;
  }
}

/** One of a Kubernetes Node's status.addresses. */
export interface KubernetesNodeAddress {
  /** InternalIP, ExternalIP, Hostname, ... */
  readonly type: string;
  readonly address: string;
}

export type Detection =
  | {
      readonly ok: true;
      readonly cidr: IpNet;
      /** The interface it is on (unknown only for a Kubernetes address given with a prefix). */
      readonly interface: string | undefined;
    }
  | { readonly ok: false; readonly reason: string };

export interface AutodetectContext {
  /** The host's interfaces (HostNetwork.interfaces()), read once for all methods. */
  readonly interfaces: readonly HostInterface[];
  readonly host: HostNetwork;
  /** The Kubernetes Node's status.addresses; undefined when not running on Kubernetes. */
  readonly kubernetesAddresses: readonly KubernetesNodeAddress[] | undefined;
}

const fail = (reason: string): Detection => ({ ok: false, reason });

/** Runs one method for one family (Calico's AutoDetectCIDR). A miss is a result, not an error. */
export async function autodetect(
  method: AutodetectionMethod,
  family: 4 | 6,
  ctx: AutodetectContext,
): Promise<Detection> {
  switch (method.kind) {
    case 'first-found':
      return filteredEnumeration(
        filterInterfaces(ctx.interfaces, [], DEFAULT_INTERFACES_TO_EXCLUDE, [family]),
        undefined,
        family,
      );
    case 'interface':
      return filteredEnumeration(
        filterInterfaces(ctx.interfaces, method.patterns, undefined, [family]),
        undefined,
        family,
      );
    case 'skip-interface':
      return filteredEnumeration(
        filterInterfaces(
          ctx.interfaces,
          [],
          [...DEFAULT_INTERFACES_TO_EXCLUDE, ...method.patterns],
          [family],
        ),
        undefined,
        family,
      );
    case 'cidr':
      return filteredEnumeration(
        filterInterfaces(ctx.interfaces, undefined, undefined, [family]),
        method.cidrs,
        family,
      );
    case 'can-reach':
      return reachDestination(method.destination, family, ctx);
    case 'kubernetes-internal-ip':
      return kubernetesInternalIp(family, ctx);
  }
}

/**
 * Calico's FilteredEnumeration (filtered.go:30): the first global unicast address, within
 * one of `cidrs` when given, on the interfaces in the order given.
 */
function filteredEnumeration(
  ifaces: readonly Interface[],
  cidrs: readonly string[] | undefined,
  family: 4 | 6,
): Detection {
  if (ifaces.length === 0) return fail('no valid host interfaces found');
  const nets = (cidrs ?? []).map((c) => parseCidr(c)!);
  for (const i of ifaces)
    for (const c of i.cidrs)
      if (isGlobalUnicast(c.address) && (nets.length === 0 || nets.some((n) => cidrContainsIp(n, c.address))))
        return { ok: true, cidr: c, interface: i.name };
  return fail(
    `no valid IPv${family} addresses found on the host interfaces` +
      (cidrs === undefined ? '' : ` within ${cidrs.join(', ')}`),
  );
}

/** The interface address equal to `ip`, over every interface (Calico walks them in reverse). */
function onInterface(
  ip: string,
  family: 4 | 6,
  interfaces: readonly HostInterface[],
): { cidr: IpNet; name: string } | undefined {
  const a = parseIp(ip);
  if (a === undefined) return undefined;
  for (const i of filterInterfaces(interfaces, undefined, undefined, [family]))
    for (const c of i.cidrs) if (sameAddress(c.address, a)) return { cidr: c, name: i.name };
  return undefined;
}

/** Calico's ReachDestination (reachaddr.go:27). */
async function reachDestination(dest: string, family: 4 | 6, ctx: AutodetectContext): Promise<Detection> {
  let src: string;
  try {
    src = await ctx.host.sourceAddressFor(dest, family);
  } catch (e) {
    return fail(`cannot reach ${dest}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const found = onInterface(src, family, ctx.interfaces);
  if (found === undefined)
    return fail(
      `autodetected IPv${family} address does not match any addresses found on local interfaces: ${src}`,
    );
  return { ok: true, cidr: found.cidr, interface: found.name };
}

/** Calico's autoDetectUsingK8sInternalIP (autodetection_methods.go:166). */
function kubernetesInternalIp(family: 4 | 6, ctx: AutodetectContext): Detection {
  if (ctx.kubernetesAddresses === undefined)
    return fail("method 'kubernetes-internal-ip' needs the Kubernetes Node, and there is none");
  for (const a of ctx.kubernetesAddresses) {
    if (a.type !== 'InternalIP' || parseIp(a.address)?.family !== family) continue;
    // The first InternalIP of the family decides, found on an interface or not
    // (autodetection_methods.go:178: it breaks out of the loop either way).
    const local = localCidr(a.address, family, ctx.interfaces);
    // Without a prefix from an interface the address does not parse as a CIDR there.
    if (local.interface === undefined && !a.address.includes('/'))
      return fail(`the Kubernetes Node's InternalIP ${a.address} is on no interface of this host`);
    return { ok: true, cidr: local.cidr, interface: local.interface };
  }
  return fail(`the Kubernetes Node has no IPv${family} InternalIP`);
}

/**
 * Calico's GetLocalCIDR (autodetection_methods.go:199): an address given without a prefix
 * takes the prefix of the interface that has it; one given with a prefix is kept; an
 * address on no interface stays as it is (a /32 or /128).
 */
export function localCidr(
  text: string,
  family: 4 | 6,
  interfaces: readonly HostInterface[],
): { cidr: IpNet; interface: string | undefined } {
  const given = parseIpNet(text);
  if (given === undefined) throw new TypeError(`${JSON.stringify(text)} is not an address`);
  if (text.includes('/')) return { cidr: given, interface: undefined };
  const found = onInterface(text, family, interfaces);
  return found === undefined
    ? { cidr: given, interface: undefined }
    : { cidr: found.cidr, interface: found.name };
}

/** "10.0.0.5/24 on eth0" for logs. */
export function describeDetection(d: Detection): string {
  if (!d.ok) return d.reason;
  return d.interface === undefined ? formatIpNet(d.cidr) : `${formatIpNet(d.cidr)} on ${d.interface}`;
}
