// The host's interfaces as Calico's autodetection sees them (autodetection/interfaces.go):
// filtered by name with include and exclude regexes, each with its addresses of the asked
// families, host part kept.
import type { HostInterface } from './host-network.js';
import type { IpNet } from './ipnet.js';
import { parseIpNet } from './ipnet.js';

/**
 * Interfaces first-found and skip-interface never pick, in Calico's order
 * (autodetection_linux.go:18): container bridges, veths, loopback, Calico's and other CNIs'
 * devices.
 */
export const DEFAULT_INTERFACES_TO_EXCLUDE: readonly string[] = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^podman.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo',
  '^br-.*',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^vxlan\\.calico.*',
  '^vxlan-v6\\.calico.*',
  '^wireguard\\.cali.*',
  '^wg-v6\\.cali.*',
  '^nodelocaldns.*',
];

/** Calico's Interface: a name and its addresses (with prefix) of the families asked for. */
export interface Interface {
  readonly name: string;
  readonly cidrs: readonly IpNet[];
}

/**
 * One regex matching any of `patterns` (Calico joins them as "(a)|(b)"), or a message saying
 * which pattern is not a valid regular expression. Go's RE2 and JavaScript agree on the
 * syntax interface names need; Go-only forms such as (?i) are refused here.
 */
export function compileInterfaceRegexes(patterns: readonly string[]): RegExp | string {
  for (const p of patterns) {
    try {
      new RegExp(p);
    } catch (e) {
      return `${JSON.stringify(p)} is not a valid regular expression: ${(e as Error).message}`;
    }
  }
  return new RegExp(`(${patterns.join(')|(')})`);
}

/**
 * Calico's GetInterfaces (interfaces.go:35): interfaces whose name matches an include
 * pattern (all when there is none) and no exclude pattern, in reverse index order ("to
 * maintain behavior with older versions", interfaces.go:61), each with its addresses of
 * `families` in the order the kernel lists them. Throws a TypeError on an invalid pattern.
 */
export function filterInterfaces(
  host: readonly HostInterface[],
  include: readonly string[] | undefined,
  exclude: readonly string[] | undefined,
  families: readonly (4 | 6)[],
): Interface[] {
  const compile = (ps: readonly string[] | undefined): RegExp | undefined => {
    if (ps === undefined || ps.length === 0) return undefined;
    const r = compileInterfaceRegexes(ps);
    if (typeof r === 'string') throw new TypeError(`invalid interface regex: ${r}`);
    return r;
  };
  const inc = compile(include);
  const exc = compile(exclude);
  const out: Interface[] = [];
  for (let i = host.length - 1; i >= 0; i--) {
    const iface = host[i]!;
    if (inc !== undefined && !inc.test(iface.name)) continue;
    if (exc?.test(iface.name) === true) continue;
    const cidrs: IpNet[] = [];
    for (const a of iface.addresses) {
      if (!families.includes(a.family)) continue;
      const n = parseIpNet(`${a.address}/${a.prefixLen}`);
      if (n !== undefined) cidrs.push(n);
    }
    out.push({ name: iface.name, cidrs });
  }
  return out;
}
