// The cluster on the lab: etcd on the management segment, the resources an operator applies,
// a tabby-node process per node namespace (kernel dataplane, its own socket, HTTP on its
// management address, nodename file and log file), and the pods, made through the CNI
// executable exactly as a runtime calls it, with the datastore work delegated to the node's
// daemon over its socket (`node_socket`).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Datastore, Ipam, openBackend } from '@tabby/datastore';
import { EtcdServer } from '@tabby/datastore/testing';
import type { DaemonStatus, RouteReport } from '@tabby/node';
import { addedAddress, ask, invokeCni, NODE_BIN } from '@tabby/node';
import { parseMetrics, type Metrics } from './metrics.js';
import { sh, SLOWDOWN, until } from './sh.js';
import type { LabNode, RackName } from './topology.js';
import { MGMT_IP, NODES, PREFIX, RACKS } from './topology.js';
import { CLUSTER_AS, TOR_HOLD_S } from './tor.js';

export const HTTP_PORT = 9099;
export const POOLS = {
  /** Plain routing: blocks routed by BGP, no encapsulation. */
  plain: { name: 'plain', cidr: '10.65.0.0/16', vxlanMode: 'Never', ipipMode: 'Never' },
  /** VXLAN CrossSubnet: encapsulated only between racks. */
  vxlan: { name: 'vxlan-cross-subnet', cidr: '10.66.0.0/16', vxlanMode: 'CrossSubnet', ipipMode: 'Never' },
  /** Made after the datastore outage: its first block is a change the nodes must pick up. */
  late: { name: 'after-outage', cidr: '10.67.0.0/16', vxlanMode: 'Never', ipipMode: 'Never' },
  /** IPIP CrossSubnet: only with --ipip, in the qemu guest (this host's kernel has no ipip). */
  ipip: { name: 'ipip-cross-subnet', cidr: '10.68.0.0/16', vxlanMode: 'Never', ipipMode: 'CrossSubnet' },
} as const;
export type PoolName = keyof typeof POOLS;

export type BgpMode = 'mesh' | 'reflectors' | 'tors-only';

export interface Pod {
  readonly name: string;
  readonly node: LabNode;
  readonly ns: string;
  readonly ip: string;
  readonly pool: PoolName;
  readonly containerId: string;
}

const v3 = 'projectcalico.org/v3';

export class Cluster {
  etcd!: EtcdServer;
  ds!: Datastore;
  private backend!: Awaited<ReturnType<typeof openBackend>>;
  readonly procs = new Map<string, ChildProcess>();
  readonly pods: Pod[] = [];
  /** Nodes stopped on purpose (their scrapes may fail). */
  readonly down = new Set<string>();

  constructor(
    readonly dir: string,
    /** With the IPIP CrossSubnet pool (the kernel must have ipip). */
    readonly ipip = false,
  ) {}

  /** The pools that exist from the start. */
  get basePools(): PoolName[] {
    return this.ipip ? ['plain', 'vxlan', 'ipip'] : ['plain', 'vxlan'];
  }

  async startDatastore(): Promise<void> {
    this.etcd = await EtcdServer.start({ host: MGMT_IP });
    this.backend = await openBackend({ type: 'etcdv3', endpoints: [this.etcd.endpoint] });
    this.ds = new Datastore(this.backend);
  }

  ipam(): Ipam {
    return new Ipam({ backend: this.backend });
  }

  /** The pools and Nodes before any daemon starts (tunnel addresses are given at start-up). */
  async applyBase(): Promise<void> {
    for (const name of this.basePools) await this.applyPool(name);
    for (const n of NODES)
      await this.ds.apply({
        apiVersion: v3,
        kind: 'Node',
        metadata: {
          name: n.name,
          labels: { rack: n.rack.name, ...(n.reflector ? { 'route-reflector': 'true' } : {}) },
        },
        spec: { bgp: { ipv4Address: `${n.ip}/24` } },
      });
    // Each node tells its ToR only its own blocks. Without this filter a node re-advertises
    // what it learned over the mesh or from a reflector (as Calico's export filter does:
    // every pool route), with itself as next hop; the ToR prefers that one-AS path to the
    // other rack's blocks over the one through the other ToR, and sends the traffic to a
    // node that can only hand it back: a loop (the lab's first run showed it).
    await this.ds.apply({
      apiVersion: v3,
      kind: 'BGPFilter',
      metadata: { name: 'tor-own-blocks-only' },
      spec: { exportV4: [{ action: 'Reject', source: 'RemotePeers' }] },
    });
    // The ToR peerings as an operator writes them: one per rack, by label. allowas-in 1:
    // every node is AS 64512, so routes from the other rack come back with 64512 in their
    // path (Calico's documented ToR design with one cluster AS); keepalive 1 s: hold 3 s.
    for (const rack of Object.values(RACKS))
      await this.ds.apply({
        apiVersion: v3,
        kind: 'BGPPeer',
        metadata: { name: `rack-${rack.name}-tor` },
        spec: {
          nodeSelector: `rack == '${rack.name}'`,
          peerIP: rack.gateway,
          asNumber: rack.asn,
          numAllowedLocalASNumbers: 1,
          keepaliveTime: `${TOR_HOLD_S / 3}s`,
          filters: ['tor-own-blocks-only'],
        },
      });
  }

  /**
   * The BGP layout of a scenario: full mesh + ToRs, two route reflectors (a1, b1: cluster
   * ID 224.0.0.1, every node peering with them) + ToRs, or the ToRs alone.
   */
  async setMode(mode: BgpMode): Promise<void> {
    await this.ds.apply({
      apiVersion: v3,
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { asNumber: CLUSTER_AS, nodeToNodeMeshEnabled: mode === 'mesh' },
    });
    for (const n of NODES.filter((x) => x.reflector)) {
      const cur = await this.ds.get('Node', n.name);
      if (cur === undefined) throw new Error(`Node ${n.name} is missing`);
      const bgp = { ...cur.spec.bgp } as Record<string, unknown>;
      if (mode === 'reflectors') bgp['routeReflectorClusterID'] = '224.0.0.1';
      else delete bgp['routeReflectorClusterID'];
      await this.ds.apply({ ...cur, spec: { ...cur.spec, bgp } });
    }
    if (mode === 'reflectors')
      await this.ds.apply({
        apiVersion: v3,
        kind: 'BGPPeer',
        metadata: { name: 'peer-with-route-reflectors' },
        spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
      });
    else if ((await this.ds.get('BGPPeer', 'peer-with-route-reflectors')) !== undefined)
      await this.ds.delete('BGPPeer', 'peer-with-route-reflectors');
  }

  async applyPool(name: PoolName): Promise<void> {
    const p = POOLS[name];
    await this.ds.apply({
      apiVersion: v3,
      kind: 'IPPool',
      metadata: { name: p.name },
      spec: { cidr: p.cidr, blockSize: 26, ipipMode: p.ipipMode, vxlanMode: p.vxlanMode, natOutgoing: false },
    });
  }

  sock(n: LabNode): string {
    return join(this.dir, `${n.name}.sock`);
  }

  logFile(n: LabNode): string {
    return join(this.dir, `${n.name}.log`);
  }

  /**
   * Starts tabby-node in the node's namespace (`ip netns exec` execs it: the child is the
   * daemon itself). The outer lab process bounds its life: it kills whatever is left in the
   * lab's namespaces when the run ends or times out.
   */
  start(n: LabNode): void {
    const log = openSync(this.logFile(n), 'a');
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        n.ns,
        process.execPath,
        NODE_BIN,
        '--node',
        n.name,
        '--ip',
        `${n.ip}/24`,
        '--no-default-pools',
        'true',
        '--datastore-type',
        'etcdv3',
        '--etcd-endpoints',
        this.etcd.endpoint,
        '--socket',
        this.sock(n),
        '--http',
        `${n.mgmtIp}:${HTTP_PORT}`,
        '--dataplane',
        'kernel',
        '--mtu-file',
        join(this.dir, `${n.name}.mtu`),
        '--nodename-file',
        join(this.dir, `${n.name}.nodename`),
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.procs.set(n.name, p);
  }

  /** The node is serving again: its scrapes count from now on. */
  markUp(n: LabNode): void {
    this.down.delete(n.name);
  }

  /** SIGTERM (a clean stop) or SIGKILL (a crash); resolves with the exit code or signal. */
  stop(n: LabNode, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<string> {
    const p = this.procs.get(n.name);
    this.procs.delete(n.name);
    this.down.add(n.name);
    if (p === undefined || p.exitCode !== null || p.signalCode !== null)
      return Promise.resolve(String(p?.exitCode ?? p?.signalCode ?? 'not running'));
    return new Promise((r) => {
      p.once('exit', (code, sig) => r(String(code ?? sig)));
      p.kill(signal);
    });
  }

  async status(n: LabNode): Promise<DaemonStatus> {
    const r = await ask(this.sock(n), { cmd: 'status' }, 3000 * SLOWDOWN);
    if (!r.ok || !('status' in r)) throw new Error(`${n.name} status: ${JSON.stringify(r)}`);
    return r.status;
  }

  async routes(n: LabNode): Promise<RouteReport> {
    const r = await ask(this.sock(n), { cmd: 'routes' }, 3000 * SLOWDOWN);
    if (!r.ok || !('routes' in r)) throw new Error(`${n.name} routes: ${JSON.stringify(r)}`);
    return r.routes;
  }

  async metrics(n: LabNode): Promise<Metrics> {
    const r = await fetch(`http://${n.mgmtIp}:${HTTP_PORT}/metrics`, {
      signal: AbortSignal.timeout(3000 * SLOWDOWN),
    });
    if (!r.ok) throw new Error(`${n.name} /metrics: HTTP ${r.status}`);
    return parseMetrics(await r.text());
  }

  async ready(n: LabNode): Promise<boolean> {
    const r = await fetch(`http://${n.mgmtIp}:${HTTP_PORT}/readyz`, {
      signal: AbortSignal.timeout(3000 * SLOWDOWN),
    });
    return r.status === 200;
  }

  /** The BlockAffinities per node, from the datastore. */
  async blocks(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const a of (await this.ds.list('BlockAffinity')).items)
      if (a.spec.state === 'confirmed') out.set(a.spec.node, [...(out.get(a.spec.node) ?? []), a.spec.cidr]);
    return out;
  }

  cniConfig(n: LabNode, pool: PoolName): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: 'k8s-pod-network',
      type: 'tabby',
      // Calico's plugin also takes `nodename_file`; ours reads only /var/lib/calico/nodename,
      // which is the host's here, so the name goes in the config.
      nodename: n.name,
      node_socket: this.sock(n),
      ipam: { type: 'tabby-ipam', ipv4_pools: [POOLS[pool].cidr] },
      datastore: { type: 'etcdv3', endpoints: [this.etcd.endpoint] },
    };
  }

  /** A pod namespace and CNI ADD for it on the node, as kubelet's runtime would. */
  addPod(n: LabNode, name: string, pool: PoolName): Pod {
    const ns = `${PREFIX}pod-${name}`;
    if (!existsSync(`/var/run/netns/${ns}`)) sh(['ip', 'netns', 'add', ns]);
    const containerId = `e2e-${name}`;
    const r = invokeCni({
      command: 'ADD',
      nodeNetns: n.ns,
      containerId,
      podNetnsPath: `/var/run/netns/${ns}`,
      pod: { namespace: 'e2e', name },
      config: this.cniConfig(n, pool),
      env: { TABBY_MTU_FILE: join(this.dir, `${n.name}.mtu`) },
      timeoutMs: 60_000 * SLOWDOWN,
    });
    if (r.status !== 0) throw new Error(`CNI ADD ${name} on ${n.name}: ${r.stdout}${r.stderr}`);
    const pod = { name, node: n, ns, ip: addedAddress(r.stdout), pool, containerId };
    this.pods.push(pod);
    return pod;
  }

  /** CNI DEL, as the runtime does when the pod goes; then the pod's namespace goes. */
  delPod(p: Pod): void {
    const r = invokeCni({
      command: 'DEL',
      nodeNetns: p.node.ns,
      containerId: p.containerId,
      podNetnsPath: `/var/run/netns/${p.ns}`,
      pod: { namespace: 'e2e', name: p.name },
      config: this.cniConfig(p.node, p.pool),
      env: { TABBY_MTU_FILE: join(this.dir, `${p.node.name}.mtu`) },
      timeoutMs: 60_000 * SLOWDOWN,
    });
    if (r.status !== 0) throw new Error(`CNI DEL ${p.name} on ${p.node.name}: ${r.stdout}${r.stderr}`);
    sh(['ip', 'netns', 'del', p.ns]);
    this.pods.splice(this.pods.indexOf(p), 1);
  }

  /** Every node answers on its socket and has a Node with its VXLAN tunnel address. */
  async waitStarted(nodes: readonly LabNode[], ms = 60_000): Promise<void> {
    await until(
      async () => {
        for (const n of nodes) await this.status(n);
        return true;
      },
      `tabby-node answering on ${nodes.map((n) => n.name).join(', ')}`,
      ms,
    );
  }

  logTail(n: LabNode, lines = 15): string {
    try {
      return readFileSync(this.logFile(n), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async shutdown(): Promise<void> {
    await Promise.all(NODES.filter((n) => this.procs.has(n.name)).map((n) => this.stop(n)));
    await this.backend?.close();
    await this.etcd?.stop();
  }

  /** Nodes of a rack. */
  static rack(r: RackName): LabNode[] {
    return NODES.filter((n) => n.rack.name === r);
  }
}
