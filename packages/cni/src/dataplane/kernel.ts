// The kernel Dataplane over @tabby/netlink, as Calico's CNI plugin wires a pod (its
// DoNetworking): a veth pair made in the host namespace with the peer moved into the pod's
// under a temporary name and renamed there (so a clash with CNI_IFNAME is told apart from
// one with the host name), host end MAC ee:ee:ee:ee:ee:ee; in the pod the /32 and /128,
// `169.254.1.1 dev eth0 scope link` and the default routes; on the host the veth's sysctls
// and `<pod ip> dev cali… scope link`. Every route carries TABBY_ROUTE_PROTOCOL.
//
// "The host namespace" is this process's: the runtime runs the plugin there.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import type { IpVersion, LinkInfo, RouteInfo, RouteSpec } from '@tabby/netlink';
import {
  formatIp,
  IFA_F_NODAD,
  isErrno,
  readSysctl,
  RT_SCOPE_LINK,
  RT_TABLE_MAIN,
  RtnlClient,
  TABBY_ROUTE_PROTOCOL,
  writeIp,
  writeSysctl,
} from '@tabby/netlink';
import type {
  Dataplane,
  HostConfig,
  InspectRequest,
  Inspection,
  PodAddress,
  PodConfig,
  VethCreated,
  VethRequest,
} from '../commands/interfaces.js';
import { GATEWAY4, InterfaceExistsError, NetnsNotFoundError } from '../commands/interfaces.js';
import type { Route } from '../spec/result.js';
import { errorText } from '../spec/errors.js';

/** Calico's host veth MAC: every host end has it, so pods' ARP/ND caches never go stale. */
export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';

/**
 * The EUI-64 IPv6 link-local address of a MAC (RFC 4291 appendix A), the one the kernel
 * derives by default: fe80::ecee:eeff:feee:eeee for Calico's ee:ee:ee:ee:ee:ee.
 */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw new TypeError(`invalid MAC ${mac}`);
  const w = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
  return `fe80::${w(b[0]! ^ 0x02, b[1]!)}:${w(b[2]!, 0xff)}:${w(0xfe, b[3]!)}:${w(b[4]!, b[5]!)}`;
}

/** A sysctl as `name` (slash form, as /proc/sys) = value; shown dotted in problems. */
interface Sysctl {
  readonly path: string;
  readonly value: string;
}

const dotted = (path: string): string => path.replaceAll('/', '.');

/**
 * The sysctls the host end of a pod's veth gets, per family (as Calico, and what felix-lite
 * expects): proxy ARP so the pod's 169.254.1.1 resolves to the host, forwarding,
 * route_localnet for NAT to the host's loopback, no proxy-ARP delay; IPv6 forwarding and
 * proxy NDP, and no router advertisements accepted from the pod.
 */
export function hostVethSysctls(veth: string, families: ReadonlySet<IpVersion>): Sysctl[] {
  const out: Sysctl[] = [];
  if (families.has(4))
    out.push(
      { path: `net/ipv4/conf/${veth}/proxy_arp`, value: '1' },
      { path: `net/ipv4/conf/${veth}/forwarding`, value: '1' },
      { path: `net/ipv4/conf/${veth}/route_localnet`, value: '1' },
      { path: `net/ipv4/neigh/${veth}/proxy_delay`, value: '0' },
    );
  if (families.has(6))
    out.push(
      { path: `net/ipv6/conf/${veth}/accept_ra`, value: '0' },
      { path: `net/ipv6/conf/${veth}/forwarding`, value: '1' },
      { path: `net/ipv6/conf/${veth}/proxy_ndp`, value: '1' },
    );
  return out;
}

/** An address or prefix in the kernel's text form, so '0:0::1' and '::1' compare equal. */
function canonical(ip: string, family: IpVersion): string {
  const buf = Buffer.alloc(16);
  writeIp(buf, 0, family, ip);
  return formatIp(buf, 0, family === 4 ? 4 : 16) ?? ip;
}

interface Prefix {
  readonly family: IpVersion;
  readonly ip: string;
  readonly len: number;
}

function prefix(cidr: string): Prefix {
  const slash = cidr.lastIndexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const family: IpVersion = ip.includes(':') ? 6 : 4;
  const len = slash < 0 ? (family === 4 ? 32 : 128) : Number(cidr.slice(slash + 1));
  return { family, ip: canonical(ip, family), len };
}

const familiesOf = (addresses: readonly PodAddress[]): Set<IpVersion> =>
  new Set(addresses.map((a) => a.family));

/** `0.0.0.0/0 via 169.254.1.1` or `169.254.1.1/32 scope link`, as the fake and CHECK say it. */
const routeText = (dst: string, gw: string | undefined): string =>
  gw === undefined ? `${dst} scope link` : `${dst} via ${gw}`;

const protoText = (p: number): string => (p === TABBY_ROUTE_PROTOCOL ? `${p} (tabby)` : String(p));

/** Opens the namespace file (for IFLA_NET_NS_FD), or NetnsNotFoundError. */
function openNetnsFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NetnsNotFoundError(path);
    throw e;
  }
}

/** A client in the pod's namespace, or NetnsNotFoundError. */
function podClient(netns: string): RtnlClient {
  try {
    return RtnlClient.open({ netns });
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new NetnsNotFoundError(netns);
    throw e;
  }
}

async function linkOrUndefined(c: RtnlClient, name: string): Promise<LinkInfo | undefined> {
  try {
    return await c.getLink(name);
  } catch (e) {
    if (isErrno(e, 'ENODEV')) return undefined;
    throw e;
  }
}

/** A route on `oif` to `dst` (a CNI route) with the given gateway, as we program it. */
function podRouteSpec(r: Route, oif: number): RouteSpec {
  const p = prefix(r.dst);
  if (r.gw === '')
    throw new Error(`no IPv6 gateway for ${r.dst}: the host end of the veth has no IPv6 link-local address`);
  return {
    family: p.family,
    dst: p.ip,
    dstLen: p.len,
    protocol: TABBY_ROUTE_PROTOCOL,
    nexthops: [r.gw === undefined ? { oif } : { gateway: r.gw, oif }],
  };
}

/** The host route to a pod address: `10.65.1.7/32 dev cali… scope link` (IPv6: /128). */
function hostRouteSpec(a: PodAddress, oif: number): RouteSpec {
  const p = prefix(a.cidr);
  return {
    family: p.family,
    dst: p.ip,
    dstLen: p.len,
    protocol: TABBY_ROUTE_PROTOCOL,
    // IPv6 routes have no scope in the kernel (dumps say universe); IPv4 ones are link-scoped
    ...(p.family === 4 ? { scope: RT_SCOPE_LINK } : {}),
    nexthops: [{ oif }],
  };
}

const sameRoute = (r: RouteInfo, s: RouteSpec): boolean => r.dst === s.dst && r.dstLen === s.dstLen;

const gatewayOf = (r: RouteInfo): string | undefined => r.nexthops[0]?.gateway;

export class KernelDataplane implements Dataplane {
  async createVeth(req: VethRequest): Promise<VethCreated> {
    const fd = openNetnsFile(req.netns);
    let fdOpen = true;
    const host = RtnlClient.open();
    let pod: RtnlClient | undefined;
    let created = false;
    try {
      // A temporary peer name no pod uses: EEXIST then means the host name is taken, and a
      // clash with CNI_IFNAME shows at the rename, inside the pod.
      const tmp = `tabby${randomBytes(5).toString('hex')}`;
      try {
        await host.createLink({
          kind: 'veth',
          name: req.hostVeth,
          mtu: req.mtu,
          address: HOST_VETH_MAC,
          peer: { name: tmp, mtu: req.mtu, netnsFd: fd },
        });
      } catch (e) {
        if (isErrno(e, 'EEXIST') && (await host.linkIndex(req.hostVeth)) !== undefined)
          throw new InterfaceExistsError(req.hostVeth, 'host');
        throw e;
      }
      created = true;
      closeSync(fd);
      fdOpen = false;
      pod = podClient(req.netns);
      const peer = await pod.getLink(tmp);
      try {
        await pod.setLink(peer.index, { name: req.ifname });
      } catch (e) {
        if (isErrno(e, 'EEXIST')) throw new InterfaceExistsError(req.ifname, 'pod');
        throw e;
      }
      const hostLink = await host.getLink(req.hostVeth);
      if (req.ipv6) this.enableIpv6(req);
      await pod.setLink(peer.index, { up: true });
      await host.setLink(hostLink.index, { up: true });
      const hostLinkLocal6 = req.ipv6 ? await this.addLinkLocal(host, hostLink) : '';
      return { hostMac: hostLink.address ?? HOST_VETH_MAC, containerMac: peer.address ?? '', hostLinkLocal6 };
    } catch (e) {
      if (created) {
        // Deleting the host end takes the peer with it, wherever it is.
        try {
          await host.deleteLink(req.hostVeth);
        } catch (e2) {
          if (!isErrno(e2, 'ENODEV'))
            throw new Error(
              `${errorText(e)}; removing the half-made veth ${req.hostVeth} also failed: ${errorText(e2)}`,
              { cause: e2 },
            );
        }
      }
      throw e;
    } finally {
      if (fdOpen) closeSync(fd);
      host.close();
      pod?.close();
    }
  }

  /**
   * IPv6 on both ends, without duplicate address detection (a point-to-point link: DAD
   * would only delay the addresses by a second or more), before the links go up.
   */
  private enableIpv6(req: VethRequest): void {
    const must = (path: string, value: string, netns?: string): void => {
      try {
        writeSysctl(path, value, netns);
      } catch (e) {
        if (isErrno(e, 'ENOENT'))
          throw new Error(
            `IPv6 is not available in the ${netns === undefined ? 'host' : 'pod'} network namespace ` +
              `(no /proc/sys/${path}): cannot give the pod an IPv6 address`,
            { cause: e },
          );
        throw e;
      }
    };
    must(`net/ipv6/conf/${req.hostVeth}/disable_ipv6`, '0');
    must(`net/ipv6/conf/${req.hostVeth}/accept_dad`, '0');
    // Runtimes may create the pod's namespace with IPv6 off (as Calico, turn it on).
    for (const dev of ['all', 'default', 'lo']) must(`net/ipv6/conf/${dev}/disable_ipv6`, '0', req.netns);
    must(`net/ipv6/conf/${req.ifname}/accept_dad`, '0', req.netns);
  }

  /**
   * The pod's IPv6 gateway: the host end's EUI-64 link-local address, added by us (no DAD)
   * rather than awaited from the kernel, which makes it only once the link watcher has seen
   * the carrier (up to a second later under load, and never with addr_gen_mode none). The
   * kernel's own (the same address, by default) then finds it in place.
   */
  private async addLinkLocal(host: RtnlClient, link: LinkInfo): Promise<string> {
    const ll = eui64LinkLocal(link.address ?? HOST_VETH_MAC);
    try {
      await host.addAddress({
        family: 6,
        index: link.index,
        address: ll,
        prefixLen: 64,
        scope: RT_SCOPE_LINK,
        flags: IFA_F_NODAD,
      });
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
    }
    return ll;
  }

  async configurePod(req: PodConfig): Promise<void> {
    const pod = podClient(req.netns);
    try {
      const link = await linkOrUndefined(pod, req.ifname);
      if (link === undefined) throw new Error(`interface ${req.ifname} not found in ${req.netns}`);
      const b = pod.batch();
      for (const a of req.addresses) {
        const p = prefix(a.cidr);
        b.addAddress({
          family: p.family,
          index: link.index,
          address: p.ip,
          prefixLen: p.len,
          ...(p.family === 6 ? { flags: IFA_F_NODAD } : {}),
        });
      }
      if (familiesOf(req.addresses).has(4))
        b.addRoute({
          family: 4,
          dst: GATEWAY4,
          dstLen: 32,
          scope: RT_SCOPE_LINK,
          protocol: TABBY_ROUTE_PROTOCOL,
          nexthops: [{ oif: link.index }],
        });
      for (const r of req.routes) b.addRoute(podRouteSpec(r, link.index));
      const failures = await b.commit();
      if (failures[0] !== undefined) throw failures[0].error;
    } finally {
      pod.close();
    }
  }

  async configureHost(req: HostConfig): Promise<void> {
    const host = RtnlClient.open();
    try {
      const link = await linkOrUndefined(host, req.hostVeth);
      if (link === undefined) throw new Error(`host veth ${req.hostVeth} not found`);
      for (const s of hostVethSysctls(req.hostVeth, familiesOf(req.addresses))) writeSysctl(s.path, s.value);
      if (!familiesOf(req.addresses).has(6)) {
        // Never take router advertisements from a pod, IPv6 address or not (as Calico; IPv6
        // may be off on this host, then there is nothing to refuse).
        try {
          writeSysctl(`net/ipv6/conf/${req.hostVeth}/accept_ra`, '0');
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
        }
      }
      for (const a of req.addresses) {
        const spec = hostRouteSpec(a, link.index);
        try {
          await host.addRoute(spec);
        } catch (e) {
          if (!isErrno(e, 'EEXIST')) throw e;
          await this.adoptHostRoute(host, spec, link, a.cidr);
        }
      }
    } finally {
      host.close();
    }
  }

  /**
   * A host route to the pod's address exists already: ours if it goes out of this veth
   * (felix-lite may have been first; make sure it carries our protocol), else an error
   * naming the interface that holds it (another pod's veth with a stale address...).
   */
  private async adoptHostRoute(
    host: RtnlClient,
    spec: RouteSpec,
    link: LinkInfo,
    cidr: string,
  ): Promise<void> {
    const existing = (await host.routes({ family: spec.family, table: RT_TABLE_MAIN })).find((r) =>
      sameRoute(r, spec),
    );
    if (existing === undefined)
      throw new Error(`host route ${cidr}: EEXIST, yet no such route in the main table`);
    const oif = existing.nexthops[0]?.oif;
    if (
      existing.type === 'unicast' &&
      existing.nexthops.length === 1 &&
      oif === link.index &&
      gatewayOf(existing) === undefined
    ) {
      if (existing.protocol !== TABBY_ROUTE_PROTOCOL) await host.replaceRoute(spec);
      return;
    }
    let via = existing.type === 'unicast' ? '' : `${existing.type} `;
    if (oif !== undefined) {
      const other = await host.getLink(oif).catch(() => undefined);
      via += `dev ${other?.name ?? `#${oif}`}`;
    }
    const gw = gatewayOf(existing);
    throw new Error(
      `host route ${cidr} already exists${gw === undefined ? '' : ` via ${gw}`} ${via} ` +
        `(protocol ${protoText(existing.protocol)}), not through ${link.name}`,
    );
  }

  async removeVeth(req: {
    readonly hostVeth: string;
    readonly netns: string;
    readonly ifname: string;
  }): Promise<'removed' | 'absent'> {
    // The pair lives and dies together: when the host end is gone (the runtime deleted the
    // namespace, or an earlier DEL ran), so is the pod end. Deleting the host end takes
    // the pod end and every route through it.
    const host = RtnlClient.open();
    try {
      const link = await linkOrUndefined(host, req.hostVeth);
      if (link === undefined) return 'absent';
      if (link.kind !== 'veth')
        throw new Error(
          `${req.hostVeth} is a ${link.kind ?? 'link of unknown kind'}, not a veth: left alone`,
        );
      try {
        await host.deleteLink(link.index);
      } catch (e) {
        if (isErrno(e, 'ENODEV')) return 'absent';
        throw e;
      }
      return 'removed';
    } finally {
      host.close();
    }
  }

  async inspect(req: InspectRequest): Promise<Inspection> {
    const problems: string[] = [];
    const families = familiesOf(req.addresses);
    const host = RtnlClient.open();
    let pod: RtnlClient | undefined;
    try {
      const hostLink = await linkOrUndefined(host, req.hostVeth);
      try {
        pod = podClient(req.netns);
      } catch (e) {
        if (!(e instanceof NetnsNotFoundError)) throw e;
        problems.push(`network namespace ${req.netns} does not exist`);
      }
      if (pod !== undefined) await this.inspectPod(pod, req, hostLink, families, problems);
      if (hostLink === undefined) problems.push(`host veth ${req.hostVeth} missing`);
      else await this.inspectHost(host, req, hostLink, families, problems);
      return { netnsExists: pod !== undefined, hostVethExists: hostLink !== undefined, problems };
    } finally {
      host.close();
      pod?.close();
    }
  }

  private async inspectPod(
    pod: RtnlClient,
    req: InspectRequest,
    hostLink: LinkInfo | undefined,
    families: ReadonlySet<IpVersion>,
    problems: string[],
  ): Promise<void> {
    const link = await linkOrUndefined(pod, req.ifname);
    if (link === undefined) {
      problems.push(`interface ${req.ifname} missing in ${req.netns}`);
      return;
    }
    if (link.kind !== 'veth')
      problems.push(`${req.ifname} is a ${link.kind ?? 'link of unknown kind'}, not a veth`);
    else if (hostLink !== undefined && (link.link !== hostLink.index || hostLink.link !== link.index))
      problems.push(`${req.ifname} is not paired with ${req.hostVeth}`);
    if (link.mtu !== req.mtu) problems.push(`${req.ifname} has MTU ${link.mtu ?? '?'}, not ${req.mtu}`);
    if (!link.up) problems.push(`${req.ifname} is down`);

    const have = await pod.addresses({ index: link.index });
    for (const a of req.addresses) {
      const p = prefix(a.cidr);
      if (!have.some((h) => h.family === p.family && h.address === p.ip && h.prefixLen === p.len))
        problems.push(`address ${a.cidr} missing on ${req.ifname}`);
    }

    const want: { spec: RouteSpec; text: string }[] = [];
    if (families.has(4))
      want.push({
        spec: { family: 4, dst: GATEWAY4, dstLen: 32, nexthops: [{ oif: link.index }] },
        text: routeText(`${GATEWAY4}/32`, undefined),
      });
    for (const r of req.routes) {
      const p = prefix(r.dst);
      want.push({
        spec: {
          family: p.family,
          dst: p.ip,
          dstLen: p.len,
          nexthops: [r.gw === undefined ? { oif: link.index } : { gateway: r.gw, oif: link.index }],
        },
        text: routeText(r.dst, r.gw),
      });
    }
    const routes = new Map<IpVersion, RouteInfo[]>();
    for (const f of families) routes.set(f, await pod.routes({ family: f, table: RT_TABLE_MAIN }));
    for (const w of want) {
      const gw = w.spec.nexthops?.[0]?.gateway;
      const found = (routes.get(w.spec.family) ?? []).find(
        (r) =>
          sameRoute(r, w.spec) &&
          r.nexthops.length === 1 &&
          r.nexthops[0]?.oif === link.index &&
          (gw === undefined ? gatewayOf(r) === undefined : gatewayOf(r) === canonical(gw, w.spec.family)),
      );
      if (found === undefined) problems.push(`route ${w.text} missing in the pod`);
      else if (found.protocol !== TABBY_ROUTE_PROTOCOL)
        problems.push(
          `route ${w.text} in the pod has protocol ${found.protocol}, not ${TABBY_ROUTE_PROTOCOL}`,
        );
    }
  }

  private async inspectHost(
    host: RtnlClient,
    req: InspectRequest,
    link: LinkInfo,
    families: ReadonlySet<IpVersion>,
    problems: string[],
  ): Promise<void> {
    const name = req.hostVeth;
    if (link.kind !== 'veth')
      problems.push(`host ${name} is a ${link.kind ?? 'link of unknown kind'}, not a veth`);
    if (link.mtu !== req.mtu) problems.push(`host veth ${name} has MTU ${link.mtu ?? '?'}, not ${req.mtu}`);
    if (!link.up) problems.push(`host veth ${name} is down`);
    if (link.address !== HOST_VETH_MAC)
      problems.push(`host veth ${name} has MAC ${link.address ?? 'none'}, not ${HOST_VETH_MAC}`);
    for (const s of hostVethSysctls(name, families)) {
      let v: string;
      try {
        v = readSysctl(s.path);
      } catch (e) {
        problems.push(`sysctl ${dotted(s.path)} unreadable: ${errorText(e)}`);
        continue;
      }
      if (v !== s.value) problems.push(`sysctl ${dotted(s.path)} is ${v}, not ${s.value}`);
    }
    if (families.has(6)) {
      // the pod's IPv6 default route needs its gateway on this veth
      const mine = new Set((await host.addresses({ family: 6, index: link.index })).map((a) => a.address));
      for (const r of req.routes)
        if (r.gw?.includes(':') === true && !mine.has(canonical(r.gw, 6)))
          problems.push(`host veth ${name} lacks the pod's IPv6 gateway address ${r.gw}`);
    }
    const routes = new Map<IpVersion, RouteInfo[]>();
    for (const f of families) routes.set(f, await host.routes({ family: f, table: RT_TABLE_MAIN }));
    for (const a of req.addresses) {
      const spec = hostRouteSpec(a, link.index);
      const found = (routes.get(spec.family) ?? []).find(
        (r) => sameRoute(r, spec) && r.nexthops.length === 1 && r.nexthops[0]?.oif === link.index,
      );
      if (found === undefined) problems.push(`host route ${a.cidr} dev ${name} missing`);
      else if (found.protocol !== TABBY_ROUTE_PROTOCOL)
        problems.push(
          `host route ${a.cidr} dev ${name} has protocol ${found.protocol}, not ${TABBY_ROUTE_PROTOCOL}`,
        );
    }
  }
}
