// `npm start`: Tabby's main job on the embedded default. A small cluster on this machine: a
// YAML-directory datastore, a route reflector and three nodes, each its own tabby-node process
// on 127.0.0.x; pods get addresses from the real IPAM (which claims blocks for their nodes);
// BGP sessions come up and routes are exchanged; status tables and each node's routes are
// printed as they converge. Without root there are no network namespaces: the routes each
// node would program are computed by felix-lite and shown. Ctrl-C stops everything cleanly.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Datastore, Ipam, openBackend } from '@tabby/datastore';
import { computeDesired, describeRoute } from '@tabby/felix-lite';
import { computeBgpConfig } from '../bgpconfig/compute.js';
import { formatRoutes, formatStatus } from '../cli/status.js';
import type { DaemonStatus } from '../daemon/node-daemon.js';
import type { RouteReport } from '../daemon/server.js';
import { ask } from '../daemon/server.js';
import { dataplaneInputs } from '../dataplane/inputs.js';

const BIN = fileURLToPath(new URL('../../../bin/tabby-node.js', import.meta.url));
const PORT = 17179;

interface DemoNode {
  readonly name: string;
  readonly ip: string;
  readonly reflector: boolean;
}

const NODES: readonly DemoNode[] = [
  { name: 'rr', ip: '127.0.0.200', reflector: true },
  { name: 'node1', ip: '127.0.0.201', reflector: false },
  { name: 'node2', ip: '127.0.0.202', reflector: false },
  { name: 'node3', ip: '127.0.0.203', reflector: false },
];

export interface DemoOptions {
  /** Stop once converged (tests); otherwise run until SIGINT/SIGTERM. */
  readonly once?: boolean;
  readonly out?: (s: string) => void;
}

export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? ((s: string) => void process.stdout.write(s));
  const t0 = performance.now();
  const say = (s: string) => out(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'tabby-demo-'));
  const dsDir = join(dir, 'datastore');
  const procs = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const root = process.getuid?.() === 0;

  out(`Tabby: a route reflector and three nodes, each its own tabby-node process on 127.0.0.x.\n`);
  out(`Datastore: the YAML directory ${dsDir} (the embedded default).\n`);
  out(
    root
      ? 'Running as root; this demo still keeps to loopback: the routes each node would program are shown (the e2e lab programs real namespaces).\n\n'
      : 'Not root: no network namespaces here, so the routes each node would program are shown instead of programmed.\n\n',
  );

  // However this process ends (an exception, a closed stdout), no node outlives it.
  const orphans = () => {
    for (const p of procs.values()) p.kill('SIGKILL');
  };
  process.once('exit', orphans);
  const backend = await openBackend({ type: 'yaml', dir: dsDir });
  const ds = new Datastore(backend);
  const stopAll = async () => {
    for (const [name, p] of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }
      procs.delete(name);
    }
    process.removeListener('exit', orphans);
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // The cluster's configuration, as an operator would apply it (Calico's kinds).
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { asNumber: 64512, nodeToNodeMeshEnabled: false, listenPort: PORT, bindMode: 'NodeIP' },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'default-ipv4-ippool' },
      spec: { cidr: '10.65.0.0/16', blockSize: 26, ipipMode: 'Never', natOutgoing: true },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'to-route-reflector' },
      spec: { nodeSelector: '!has(route-reflector)', peerSelector: "route-reflector == 'true'" },
    });
    for (const n of NODES)
      await ds.apply({
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: { name: n.name, ...(n.reflector ? { labels: { 'route-reflector': 'true' } } : {}) },
        spec: {
          bgp: { ipv4Address: `${n.ip}/8`, ...(n.reflector ? { routeReflectorClusterID: '224.0.0.1' } : {}) },
        },
      });
    say(
      'resources applied: BGPConfiguration (mesh off), IPPool 10.65.0.0/16, BGPPeer to the reflector, 4 Nodes',
    );

    // Pods, through the real IPAM: the first address on a node claims a block for it.
    const ipam = new Ipam({ backend });
    for (const n of NODES.filter((x) => !x.reflector))
      for (const pod of ['web', 'db']) {
        const ns = 'demo';
        const podName = `${pod}-${n.name}`;
        const r = await ipam.autoAssign({
          handleId: `k8s-pod-network.${n.name}.${ns}.${podName}`,
          num4: 1,
          num6: 0,
          node: n.name,
          attrs: { namespace: ns, pod: podName },
        });
        const ip = r.ipv4[0]!.ip;
        await ds.apply({
          apiVersion: 'projectcalico.org/v3',
          kind: 'WorkloadEndpoint',
          metadata: { name: `${n.name}-k8s-${podName}-eth0`, namespace: ns, labels: { app: pod } },
          spec: {
            node: n.name,
            orchestrator: 'k8s',
            pod: podName,
            endpoint: 'eth0',
            interfaceName: `cali${createHash('sha1').update(`${ns}.${podName}`).digest('hex').slice(0, 11)}`,
            ipNetworks: [`${ip}/32`],
          },
        });
        say(`pod ${ns}/${podName} on ${n.name}: ${ip} (block ${r.ipv4[0]!.block})`);
      }

    for (const n of NODES) {
      const p = spawn(
        process.execPath,
        [
          BIN,
          '--node',
          n.name,
          '--datastore-dir',
          dsDir,
          '--socket',
          join(dir, `${n.name}.sock`),
          '--dataplane',
          'none',
          '--nodename-file',
          join(dir, `${n.name}.nodename`),
          '--http',
          'none',
          '--log-level',
          'warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      logs.set(n.name, '');
      const keep = (d: Buffer) => logs.set(n.name, (logs.get(n.name)! + d.toString()).slice(-4000));
      p.stdout.on('data', keep);
      p.stderr.on('data', keep);
      p.once('exit', (code, signal) => {
        if (procs.has(n.name)) say(`tabby-node ${n.name} exited (${code ?? signal}): ${logs.get(n.name)}`);
      });
      procs.set(n.name, p);
    }
    say('started 4 tabby-node processes');

    const status = async (name: string): Promise<DaemonStatus | undefined> => {
      try {
        const r = await ask(join(dir, `${name}.sock`), { cmd: 'status' });
        return r.ok && 'status' in r ? r.status : undefined;
      } catch {
        return undefined; // still starting
      }
    };
    const routes = async (name: string): Promise<RouteReport | undefined> => {
      const r = await ask(join(dir, `${name}.sock`), { cmd: 'routes' });
      return r.ok && 'routes' in r ? r.routes : undefined;
    };

    // Converge: print each change of the summary until every session is up and every node
    // has the other nodes' blocks.
    let last = '';
    const blocksOf = new Map<string, string[]>();
    for (const a of (await ds.list('BlockAffinity')).items)
      blocksOf.set(a.spec.node, [...(blocksOf.get(a.spec.node) ?? []), a.spec.cidr]);
    const allBlocks = [...blocksOf.values()].flat();
    for (let i = 0; ; i++) {
      const parts: string[] = [];
      let done = true;
      for (const n of NODES) {
        const s = await status(n.name);
        const up = s?.peers.filter((p) => p.state === 'established').length ?? 0;
        const want = n.reflector ? 3 : 1;
        const learned = s === undefined ? 0 : ((await routes(n.name))?.learned.length ?? 0);
        const wantLearned = allBlocks.filter((b) => !(blocksOf.get(n.name) ?? []).includes(b)).length;
        if (up < want || learned < wantLearned) done = false;
        parts.push(
          `${n.name} ${s === undefined ? 'starting' : `${up}/${want} up, ${learned}/${wantLearned} routes`}`,
        );
      }
      const line = parts.join(' | ');
      if (line !== last) say(line);
      last = line;
      if (done) break;
      if (i > 600)
        throw new Error(`not converged after 60 s:\n${[...logs].map(([n, l]) => `${n}: ${l}`).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    say('converged');

    for (const n of NODES) {
      out(`\n===== ${n.name}: tabby status =====\n${formatStatus((await status(n.name))!)}`);
      const r = (await routes(n.name))!;
      out(`\n===== ${n.name}: tabby routes =====\n${formatRoutes(r)}`);
      if (n.reflector) continue;
      // What felix-lite would program on this node (computed, not programmed: see above).
      const snapshot = {
        bgpConfigurations: (await ds.list('BGPConfiguration')).items,
        bgpPeers: (await ds.list('BGPPeer')).items,
        bgpFilters: [],
        nodes: (await ds.list('Node')).items,
        ipPools: (await ds.list('IPPool')).items,
        blockAffinities: (await ds.list('BlockAffinity')).items,
        workloadEndpoints: (await ds.list('WorkloadEndpoint')).items,
        kubernetes: { secrets: [], services: [], endpointSlices: [], nodeLabels: new Map() },
      };
      const config = computeBgpConfig(snapshot, n.name);
      const paths = new Map(r.learned.map((l) => [l.prefix, l.nextHops]));
      const desired = computeDesired(
        dataplaneInputs({ paths, config, snapshot }, [{ name: 'eth0', addresses: [`${n.ip}/8`] }]),
      );
      out(`\n===== ${n.name}: kernel routes it would program (felix-lite) =====\n`);
      for (const route of desired.routes) out(`  ${describeRoute(route)}\n`);
      for (const p of desired.problems) out(`  (${p.kind}: ${p.message})\n`);
    }

    if (opts.once === true) return 0;
    out('\nRunning; Ctrl-C stops the nodes and removes the demo directory.\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    say('stopping');
    return 0;
  } finally {
    await stopAll();
  }
}
