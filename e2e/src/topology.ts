// The lab's data centre: two racks on routed subnets, a ToR per rack (BIRD in its own
// namespace, its rack's switch being a bridge there), a link between the ToRs, and a
// management segment for the datastore and metrics, kept apart from the data path:
//
//                        ToR-A e2e-tora (AS 65001)  spine0  ToR-B e2e-torb (AS 65002)
//                        lo 10.255.0.1/32    10.10.0.1/30 ─── 10.10.0.2/30   lo 10.255.0.2/32
//                        br0 10.10.1.1/24                                    br0 10.10.2.1/24
//                          │            │                                      │            │
//   nodes (eth0):    a1 10.10.1.11  a2 10.10.1.12                     b1 10.10.2.11  b2 10.10.2.12
//   (mgmt0):         10.99.0.11     10.99.0.12                        10.99.0.21     10.99.0.22
//                          └────────────┴──── br0 10.99.0.1/24 in e2e-mgmt ──┴────────────┘
//                                             etcd, the lab runner, /metrics scrapes
//
// Every namespace is named e2e-*; cleanup() removes all of them (and the processes in them),
// whoever made them, so a crashed run's leftovers go at the next start.
import { readdirSync } from 'node:fs';
import { ipn, sh } from './sh.js';

export const PREFIX = 'e2e-';
export const MGMT_NS = `${PREFIX}mgmt`;
export const MGMT_IP = '10.99.0.1';

export type RackName = 'a' | 'b';

export interface Rack {
  readonly name: RackName;
  readonly torNs: string;
  readonly asn: number;
  /** The ToR's address on the rack subnet: the nodes' BGP peer and default gateway. */
  readonly gateway: string;
  readonly subnet: string;
  readonly loopback: string;
  /** The ToR's end of the inter-ToR link. */
  readonly spineIp: string;
}

export const RACKS: Readonly<Record<RackName, Rack>> = {
  a: {
    name: 'a',
    torNs: `${PREFIX}tora`,
    asn: 65001,
    gateway: '10.10.1.1',
    subnet: '10.10.1.0/24',
    loopback: '10.255.0.1',
    spineIp: '10.10.0.1',
  },
  b: {
    name: 'b',
    torNs: `${PREFIX}torb`,
    asn: 65002,
    gateway: '10.10.2.1',
    subnet: '10.10.2.0/24',
    loopback: '10.255.0.2',
    spineIp: '10.10.0.2',
  },
};

export interface LabNode {
  readonly name: string;
  readonly rack: Rack;
  readonly ns: string;
  /** Its address on the rack subnet (eth0): the Node's BGP address. */
  readonly ip: string;
  readonly mgmtIp: string;
  /** Labelled route-reflector (with a cluster ID) in the reflector scenario. */
  readonly reflector: boolean;
}

const node = (name: string, rack: RackName, host: number, mgmt: number, reflector: boolean): LabNode => ({
  name,
  rack: RACKS[rack],
  ns: `${PREFIX}${name}`,
  ip: `10.10.${rack === 'a' ? 1 : 2}.${host}`,
  mgmtIp: `10.99.0.${mgmt}`,
  reflector,
});

export const NODES: readonly LabNode[] = [
  node('a1', 'a', 11, 11, true),
  node('a2', 'a', 12, 12, false),
  node('b1', 'b', 11, 21, true),
  node('b2', 'b', 12, 22, false),
];

/** The e2e-* namespaces that exist now. */
export function labNamespaces(): string[] {
  let names: string[];
  try {
    names = readdirSync('/var/run/netns');
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(PREFIX));
}

/**
 * Kills every process left in an e2e-* namespace (SIGKILL, by pid) and deletes the
 * namespaces. Safe to run at any time; returns what it removed.
 */
export function cleanup(): string[] {
  const gone = labNamespaces();
  for (const ns of gone) {
    let pids: string[] = [];
    try {
      pids = sh(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean);
    } catch {
      // the namespace went meanwhile
    }
    for (const pid of pids) {
      const n = Number(pid);
      if (n > 1 && n !== process.pid)
        try {
          process.kill(n, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
    }
  }
  // The pods' namespaces first: their veths' host ends live in the nodes'.
  for (const ns of gone.sort((x, y) => Number(y.includes('-pod-')) - Number(x.includes('-pod-'))))
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      // already gone
    }
  return gone;
}

function addNetns(ns: string): void {
  sh(['ip', 'netns', 'add', ns]);
  ipn(ns, 'link', 'set', 'lo', 'up');
}

const sysctl = (ns: string, kv: string) => sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', kv]);

/** The management namespace and its bridge: made by the outer process, before the runner enters it. */
export function buildManagement(): void {
  addNetns(MGMT_NS);
  ipn(MGMT_NS, 'link', 'add', 'br0', 'type', 'bridge');
  ipn(MGMT_NS, 'addr', 'add', `${MGMT_IP}/24`, 'dev', 'br0');
  ipn(MGMT_NS, 'link', 'set', 'br0', 'up');
}

/** A veth pair with one end in each namespace, under the given names. */
function veth(nsA: string, devA: string, nsB: string, devB: string): void {
  sh(['ip', 'link', 'add', 'e2etmp0', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'e2etmp1', 'netns', nsB]);
  ipn(nsA, 'link', 'set', 'e2etmp0', 'name', devA);
  ipn(nsB, 'link', 'set', 'e2etmp1', 'name', devB);
}

/** The ToRs, their link and the nodes' namespaces, wired as drawn above. */
export function buildFabric(): void {
  for (const rack of Object.values(RACKS)) {
    const ns = rack.torNs;
    addNetns(ns);
    sysctl(ns, 'net.ipv4.ip_forward=1');
    ipn(ns, 'addr', 'add', `${rack.loopback}/32`, 'dev', 'lo');
    ipn(ns, 'link', 'add', 'br0', 'type', 'bridge');
    ipn(ns, 'addr', 'add', `${rack.gateway}/24`, 'dev', 'br0');
    ipn(ns, 'link', 'set', 'br0', 'up');
  }
  veth(RACKS.a.torNs, 'spine0', RACKS.b.torNs, 'spine0');
  for (const rack of Object.values(RACKS)) {
    ipn(rack.torNs, 'addr', 'add', `${rack.spineIp}/30`, 'dev', 'spine0');
    ipn(rack.torNs, 'link', 'set', 'spine0', 'up');
  }
  for (const n of NODES) {
    addNetns(n.ns);
    // The rack link: eth0 in the node, a port of the ToR's bridge named after the node.
    veth(n.ns, 'eth0', n.rack.torNs, n.name);
    ipn(n.rack.torNs, 'link', 'set', n.name, 'master', 'br0', 'up');
    ipn(n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', 'eth0');
    ipn(n.ns, 'link', 'set', 'eth0', 'up');
    // A host has a default route (here via its ToR); proxy ARP, how pods reach
    // 169.254.1.1, answers only for addresses the host can route elsewhere.
    ipn(n.ns, 'route', 'add', 'default', 'via', n.rack.gateway, 'dev', 'eth0');
    // The management link: a port of e2e-mgmt's bridge.
    veth(n.ns, 'mgmt0', MGMT_NS, `m-${n.name}`);
    ipn(MGMT_NS, 'link', 'set', `m-${n.name}`, 'master', 'br0', 'up');
    ipn(n.ns, 'addr', 'add', `${n.mgmtIp}/24`, 'dev', 'mgmt0');
    ipn(n.ns, 'link', 'set', 'mgmt0', 'up');
    sysctl(n.ns, 'net.ipv4.ip_forward=1');
  }
}
