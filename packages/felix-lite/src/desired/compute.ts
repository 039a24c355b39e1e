// The desired kernel state: a pure function of the node's view of the cluster, giving the
// routes (and VXLAN neighbour entries) Calico's Felix would program, IPv4 and IPv6:
//
//   local pod        10.65.1.7 dev cali1a2b3c4d5e6 scope link      (IPv6: fd00::7 dev cali… metric 1024)
//                      + 10.65.1.7 lladdr <pod MAC> dev cali… PERMANENT, when the endpoint's MAC is
//                        known (Felix's static ARP entry; the same NDP entry for IPv6, which Felix
//                        leaves to the kernel: here the node never has to solicit its own pods)
//   own block        blackhole 10.65.1.0/26
//   remote block     10.65.2.0/26 via 192.168.0.12 dev eth0          (no encapsulation)
//                    10.65.2.0/26 via 192.168.0.12 dev tunl0 onlink  (IPIP Always; CrossSubnet off-subnet)
//                    10.65.2.0/26 via 10.65.2.192 dev vxlan.calico onlink
//                      + 10.65.2.192 lladdr <mac> dev vxlan.calico, <mac> dev vxlan.calico dst 192.168.0.12
//   several paths    one ECMP route, each next hop keeping its own device (Calico's BIRD
//                    export loses the tunnel device on multipath; we do not)
//
// Borrowed addresses as Calico: a local pod whose address lies in another node's block gets
// its /32 like any other (no blackhole: the block is not ours), and a remote /32 learned
// inside one of our blocks is programmed beside our blackhole (longest match wins).
// Precedence when two sources want the same key: local endpoint, then own block, then a
// learned path; the loser is reported as a problem. Bad input never throws: the item is
// skipped and reported, so one malformed endpoint cannot stop a node's routing.
import type { Cidr, IpAddress, IpVersion } from '../routes/ip.js';
import { cidrText, containsCidr, containsIp, parseCidr, parseIp, sameCidr } from '../routes/ip.js';
import type { Neighbour } from '../routes/neighbour.js';
import { neighbourKeyId } from '../routes/neighbour.js';
import type { Route, RouteKeyId, RouteNextHop } from '../routes/route.js';
import {
  defaultMetric,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  routeKeyId,
  sortNextHops,
} from '../routes/route.js';
import type { Encapsulation } from '@tabby/ipip';
import { encapsulationFor, normalizeMac } from '@tabby/ipip';
import type { DataplaneInputs, PoolInput, RemoteVtep } from './inputs.js';

export type ProblemKind =
  | 'invalid-input'
  | 'duplicate-prefix'
  | 'path-for-own-block'
  | 'next-hop-is-self'
  | 'no-route-to-next-hop'
  | 'missing-vtep'
  | 'conflicting-fdb'
  | 'conflicting-encapsulation'
  | 'ipip-on-ipv6';

/** Something in the inputs that could not be turned into kernel state as asked. */
export interface Problem {
  readonly kind: ProblemKind;
  /** The prefix, endpoint, pool or next hop concerned. */
  readonly subject: string;
  readonly message: string;
}

/** Masquerade rules for natOutgoing pools, per family (programmed by the NAT part, not here). */
export interface NatOutgoing {
  readonly family: IpVersion;
  /** Sources to masquerade: the natOutgoing pools. */
  readonly sources: readonly string[];
  /** Destinations left alone: every pool of the family (pod to pod is never NATed). */
  readonly exceptDestinations: readonly string[];
}

export interface DesiredState {
  /** Sorted by key. */
  readonly routes: readonly Route[];
  readonly neighbours: readonly Neighbour[];
  readonly nat: readonly NatOutgoing[];
  readonly problems: readonly Problem[];
}

interface ParsedPool {
  readonly input: PoolInput;
  readonly cidr: Cidr;
}

interface Subnet {
  readonly dev: string;
  readonly cidr: Cidr;
}

const MAX_IFNAME = 15;

export function computeDesired(inputs: DataplaneInputs): DesiredState {
  const opts = inputs.options ?? {};
  const table = opts.table ?? RT_TABLE_MAIN;
  const ipipDev = opts.ipipDevice ?? 'tunl0';
  const vxlanDev = (f: IpVersion): string =>
    f === 4 ? (opts.vxlanDevice ?? 'vxlan.calico') : (opts.vxlanDeviceV6 ?? 'vxlan-v6.calico');

  const problems: Problem[] = [];
  const problem = (kind: ProblemKind, subject: string, message: string): void => {
    problems.push({ kind, subject, message });
  };
  const tryCidr = (text: string, what: string, lenient = false): Cidr | undefined => {
    try {
      return parseCidr(text, { lenient });
    } catch (e) {
      problem('invalid-input', text, `${what}: ${(e as Error).message}`);
      return undefined;
    }
  };
  const tryIp = (text: string, what: string): IpAddress | undefined => {
    try {
      return parseIp(text);
    } catch (e) {
      problem('invalid-input', text, `${what}: ${(e as Error).message}`);
      return undefined;
    }
  };

  // pools, most specific first (a prefix takes the mode of the narrowest pool holding it)
  const pools: ParsedPool[] = [];
  for (const p of inputs.pools) {
    const cidr = tryCidr(p.cidr, 'IP pool');
    if (cidr === undefined) continue;
    pools.push({ input: p, cidr });
    const vx = p.vxlanMode ?? 'Never';
    const ip = p.ipipMode ?? 'Never';
    if (cidr.family === 6 && ip !== 'Never')
      problem('ipip-on-ipv6', p.cidr, `ipipMode ${ip} on an IPv6 pool is ignored (IPIP carries IPv4 only)`);
    else if (vx !== 'Never' && ip !== 'Never')
      problem(
        'conflicting-encapsulation',
        p.cidr,
        `both ipipMode ${ip} and vxlanMode ${vx}: VXLAN is used (Calico refuses such a pool)`,
      );
  }
  pools.sort((a, b) => b.cidr.prefixLen - a.cidr.prefixLen);
  const poolOf = (c: Cidr): ParsedPool | undefined => pools.find((p) => containsCidr(p.cidr, c));

  // local subnets and our own addresses
  const subnets: Subnet[] = [];
  const self = new Set<string>();
  for (const iface of inputs.hostInterfaces) {
    for (const a of iface.addresses) {
      const cidr = tryCidr(a, `address of ${iface.name}`, true);
      if (cidr === undefined) continue;
      subnets.push({ dev: iface.name, cidr });
      self.add(parseIp(a.slice(0, a.includes('/') ? a.indexOf('/') : a.length)).text);
    }
  }
  subnets.sort((a, b) => b.cidr.prefixLen - a.cidr.prefixLen);
  const subnetOf = (ip: IpAddress): Subnet | undefined => subnets.find((s) => containsIp(s.cidr, ip));

  const vteps = new Map<string, RemoteVtep>(); // `${family}|${nodeAddress}`
  for (const v of inputs.vteps ?? []) {
    const node = tryIp(v.nodeAddress, 'VTEP node address');
    const tunnel = tryIp(v.tunnelAddress, 'VTEP tunnel address');
    if (node === undefined || tunnel === undefined) continue;
    vteps.set(`${tunnel.family}|${node.text}`, {
      nodeAddress: node.text,
      tunnelAddress: tunnel.text,
      mac: v.mac,
    });
  }

  const routes = new Map<RouteKeyId, { route: Route; source: string }>();
  /** Takes the route unless its key is taken (a problem then); true when taken. */
  const put = (route: Route, source: string): boolean => {
    const id = routeKeyId(route);
    const had = routes.get(id);
    if (had !== undefined) {
      problem(
        'duplicate-prefix',
        `${route.dst}/${route.dstLen}`,
        `${source} wants ${route.dst}/${route.dstLen}, already taken by ${had.source}`,
      );
      return false;
    }
    routes.set(id, { route, source });
    return true;
  };
  const base = (c: Cidr): Pick<Route, 'family' | 'table' | 'dst' | 'dstLen' | 'metric'> => ({
    family: c.family,
    table,
    dst: c.address,
    dstLen: c.prefixLen,
    metric: defaultMetric(c.family),
  });

  const neighbours = new Map<string, Neighbour>();

  // 1. local endpoints: a device route to each address, and its neighbour entry when the MAC is known
  for (const ep of inputs.endpoints) {
    const who = ep.name ?? ep.interfaceName;
    if (
      ep.interfaceName.length === 0 ||
      ep.interfaceName.length > MAX_IFNAME ||
      /[\s/]/.test(ep.interfaceName)
    ) {
      problem('invalid-input', who, `invalid interface name ${JSON.stringify(ep.interfaceName)}`);
      continue;
    }
    let mac: string | undefined;
    if (ep.mac !== undefined) {
      mac = normalizeMac(ep.mac);
      if (mac === undefined || mac === '00:00:00:00:00:00' || (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
        problem(
          'invalid-input',
          who,
          `endpoint MAC ${JSON.stringify(ep.mac)} is not a unicast MAC: no neighbour entry`,
        );
        mac = undefined;
      }
    }
    for (const a of ep.addresses) {
      const c = tryCidr(a, `address of endpoint ${who}`);
      if (c === undefined) continue;
      if (c.prefixLen !== (c.family === 4 ? 32 : 128)) {
        problem('invalid-input', who, `endpoint address ${a} is not a host address`);
        continue;
      }
      const routed = put(
        {
          ...base(c),
          type: 'unicast',
          scope: c.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
          nexthops: [{ dev: ep.interfaceName }],
        },
        `endpoint ${who}`,
      );
      // the address's entry goes where its route goes (not on the device of a duplicate)
      if (routed && mac !== undefined) {
        const n: Neighbour = { kind: 'arp', family: c.family, dev: ep.interfaceName, ip: c.address, mac };
        neighbours.set(neighbourKeyId(n), n);
      }
    }
  }

  // 2. own blocks: blackholes, so traffic to an unused address in them dies here instead of
  //    following a default route out (and looping back)
  const ownBlocks: Cidr[] = [];
  for (const b of inputs.affineBlocks) {
    const c = tryCidr(b, 'affine block');
    if (c === undefined) continue;
    ownBlocks.push(c);
    put(
      { ...base(c), type: 'blackhole', scope: RT_SCOPE_UNIVERSE, nexthops: [] },
      `own block ${cidrText(c)}`,
    );
  }

  // 3. learned paths
  // the one decision @tabby/ipip also uses for the devices: routes and tunnels agree
  const encapFor = (pool: ParsedPool | undefined, family: IpVersion, onSubnet: boolean): Encapsulation =>
    encapsulationFor(pool?.input, family, onSubnet);
  for (const path of inputs.paths) {
    const c = tryCidr(path.prefix, 'path prefix', true);
    if (c === undefined) continue;
    const text = cidrText(c);
    if (ownBlocks.some((b) => sameCidr(b, c))) {
      problem(
        'path-for-own-block',
        text,
        `a path for our own block ${text} is ignored (the blackhole stays)`,
      );
      continue;
    }
    const pool = poolOf(c);
    const hops: RouteNextHop[] = [];
    const seen = new Set<string>();
    for (const nhText of path.nextHops) {
      const nh = tryIp(nhText, `next hop of ${text}`);
      if (nh === undefined) continue;
      if (nh.family !== c.family) {
        problem('invalid-input', text, `next hop ${nh.text} is not IPv${c.family}`);
        continue;
      }
      if (self.has(nh.text)) {
        problem('next-hop-is-self', text, `next hop ${nh.text} is this node`);
        continue;
      }
      const subnet = subnetOf(nh);
      let hop: RouteNextHop;
      switch (encapFor(pool, c.family, subnet !== undefined)) {
        case 'none':
          if (subnet === undefined) {
            problem(
              'no-route-to-next-hop',
              text,
              `next hop ${nh.text} is on no local subnet and ${pool === undefined ? 'no pool' : `pool ${cidrText(pool.cidr)}`} asks for no encapsulation: left to the host's own routes`,
            );
            continue;
          }
          hop = { dev: subnet.dev, gateway: nh.text };
          break;
        case 'ipip':
          hop = { dev: ipipDev, gateway: nh.text, onlink: true };
          break;
        case 'vxlan': {
          const v = vteps.get(`${c.family}|${nh.text}`);
          if (v === undefined) {
            problem('missing-vtep', text, `no IPv${c.family} VTEP known for node ${nh.text}`);
            continue;
          }
          const dev = vxlanDev(c.family);
          hop = { dev, gateway: v.tunnelAddress, onlink: true };
          const arp: Neighbour = { kind: 'arp', family: c.family, dev, ip: v.tunnelAddress, mac: v.mac };
          neighbours.set(neighbourKeyId(arp), arp);
          const fdb: Neighbour = { kind: 'fdb', dev, mac: v.mac, dst: v.nodeAddress };
          const had = neighbours.get(neighbourKeyId(fdb));
          if (had !== undefined && had.kind === 'fdb' && had.dst !== fdb.dst)
            problem('conflicting-fdb', v.mac, `MAC ${v.mac} claimed by VTEPs at ${had.dst} and ${fdb.dst}`);
          else neighbours.set(neighbourKeyId(fdb), fdb);
          break;
        }
      }
      const id = `${hop.gateway ?? ''}|${hop.dev}`;
      if (seen.has(id)) continue;
      seen.add(id);
      hops.push(hop);
    }
    if (hops.length === 0) continue;
    put(
      { ...base(c), type: 'unicast', scope: RT_SCOPE_UNIVERSE, nexthops: sortNextHops(hops) },
      `path ${text} via ${path.nextHops.join(',')}`,
    );
  }

  // NAT outgoing: from natOutgoing pools to anywhere outside every pool of the family
  const nat: NatOutgoing[] = [];
  for (const family of [4, 6] as const) {
    const sources = pools.filter((p) => p.cidr.family === family && p.input.natOutgoing === true);
    if (sources.length === 0) continue;
    nat.push({
      family,
      sources: sources.map((p) => cidrText(p.cidr)).sort(),
      exceptDestinations: pools
        .filter((p) => p.cidr.family === family)
        .map((p) => cidrText(p.cidr))
        .sort(),
    });
  }

  const sorted = [...routes.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return {
    routes: sorted.map((e) => e[1].route),
    neighbours: [...neighbours.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((e) => e[1]),
    nat,
    problems,
  };
}
