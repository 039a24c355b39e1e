// `npm start`: Tabby's main job on the embedded default. A small cluster on this machine: a
// YAML-directory datastore, a route reflector and three nodes, each its own tabby-node process
// on 127.0.0.x; pods get addresses from the real IPAM (which claims blocks for their nodes);
// BGP sessions come up and routes are exchanged; status tables and each node's routes are
// printed as they converge. Without root there are no network namespaces: the routes each
// node would program are computed by felix-lite and shown. Ctrl-C stops everything cleanly.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Datastore, Ipam, openBackend } from '@tabby/datastore';
import { computeDesired, describeRoute } from '@tabby/felix-lite';
import { computeBgpConfig } from '../bgpconfig/compute.js';
import { formatRoutes, formatStatus } from '../cli/status.js';
import { table } from '../bgpconfig/render/table.js';
import type { DaemonStatus } from '../daemon/node-daemon.js';
import type { RouteReport } from '../daemon/server.js';
import { ask } from '../daemon/server.js';
import { dataplaneInputs } from '../dataplane/inputs.js';
import { loadSnapshot } from '../bgpconfig/snapshot.js';
import { addedAddress, invokeCni, NODE_BIN } from '../lab/cni-exec.js';

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
  /** Keep to loopback even as root (no namespaces, no kernel routes). */
  readonly loopback?: boolean;
  readonly out?: (s: string) => void;
}

/** As root, each node is a network namespace on a shared segment (10.200.0.0/24), and pods are namespaces too. */
const NS_IP: Readonly<Record<string, string>> = {
  rr: '10.200.0.10',
  node1: '10.200.0.11',
  node2: '10.200.0.12',
  node3: '10.200.0.13',
};

function sh(args: readonly string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr || r.stdout}`);
}

export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? ((s: string) => void process.stdout.write(s));
  const t0 = performance.now();
  const say = (s: string) => out(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'tabby-demo-'));
  const dsDir = join(dir, 'datastore');
  const procs = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const netns =
    opts.loopback !== true &&
    process.getuid?.() === 0 &&
    spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).status === 0;
  const tag = `td${process.pid % 10000}`;
  const nsOf = (name: string) => `${tag}-${name}`;
  const ipOf = (n: DemoNode) => (netns ? NS_IP[n.name]! : n.ip);
  const made: string[] = [];

  out(
    `Tabby: a route reflector and three nodes, each its own tabby-node process ${netns ? 'in its own network namespace' : 'on 127.0.0.x'}.\n`,
  );
  out(`Datastore: the YAML directory ${dsDir} (the embedded default).\n`);
  out(
    netns
      ? 'As root: each node is a network namespace on one segment, pods are namespaces made by the CNI plugin, and the kernel routes are real; the pods ping each other at the end.\n\n'
      : 'Not root (or --loopback): no network namespaces here, so the routes each node would program are shown instead of programmed.\n\n',
  );

  // However this process ends (an exception, a closed stdout), no node outlives it.
  const orphans = () => {
    for (const p of procs.values()) p.kill('SIGKILL');
  };
  process.once('exit', orphans);
  const backend = await openBackend({ type: 'yaml', dir: dsDir });
  const ds = new Datastore(backend);
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    for (const [name, p] of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }
      procs.delete(name);
    }
    process.removeListener('exit', orphans);
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
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
          bgp: {
            ipv4Address: netns ? `${ipOf(n)}/24` : `${n.ip}/8`,
            ...(n.reflector ? { routeReflectorClusterID: '224.0.0.1' } : {}),
          },
        },
      });
    say(
      'resources applied: BGPConfiguration (mesh off), IPPool 10.65.0.0/16, BGPPeer to the reflector, 4 Nodes',
    );

    // The nodes' namespaces (as root): each on one segment through a bridge in its own namespace.
    if (netns) {
      const fabric = nsOf('fabric');
      sh(['ip', 'netns', 'add', fabric]);
      made.push(fabric);
      sh(['ip', '-n', fabric, 'link', 'add', 'br0', 'type', 'bridge']);
      sh(['ip', '-n', fabric, 'link', 'set', 'br0', 'up']);
      for (const [i, n] of NODES.entries()) {
        const ns = nsOf(n.name);
        sh(['ip', 'netns', 'add', ns]);
        made.push(ns);
        sh(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', fabric]);
        sh(['ip', '-n', fabric, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
        sh(['ip', '-n', ns, 'addr', 'add', `${ipOf(n)}/24`, 'dev', 'eth0']);
        sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
        sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        // A host has a default route; proxy ARP (pods reach 169.254.1.1 by it) needs one.
        sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', '10.200.0.1']);
        sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      }
      say(`namespaces: ${NODES.map((n) => `${nsOf(n.name)} (${ipOf(n)})`).join(', ')}`);
    }

    // Pods. As root, through the CNI plugin exactly as a runtime runs it; otherwise straight
    // through the real IPAM (the first address on a node claims a block for it).
    const pods: { name: string; node: string; ns?: string; ip: string }[] = [];
    const ipam = new Ipam({ backend });
    for (const n of NODES.filter((x) => !x.reflector))
      for (const pod of ['web', 'db']) {
        const ns = 'demo';
        const podName = `${pod}-${n.name}`;
        if (netns) {
          const podNs = nsOf(podName);
          sh(['ip', 'netns', 'add', podNs]);
          made.push(podNs);
          const r = invokeCni({
            command: 'ADD',
            nodeNetns: nsOf(n.name),
            containerId: `demo-${podName}`,
            podNetnsPath: `/var/run/netns/${podNs}`,
            pod: { namespace: ns, name: podName },
            config: {
              cniVersion: '1.1.0',
              name: 'tabby',
              type: 'tabby',
              nodename: n.name,
              ipam: { type: 'tabby-ipam' },
              datastore: { type: 'yaml', dir: dsDir },
            },
            env: { TABBY_MTU_FILE: join(dir, `${n.name}.mtu`) },
          });
          if (r.status !== 0) throw new Error(`CNI ADD for ${podName}: ${r.stdout}${r.stderr}`);
          const ip = addedAddress(r.stdout);
          pods.push({ name: podName, node: n.name, ns: podNs, ip });
          say(`pod ${ns}/${podName} on ${n.name}: ${ip} (CNI ADD in ${nsOf(n.name)})`);
          continue;
        }
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
        pods.push({ name: podName, node: n.name, ip });
        say(`pod ${ns}/${podName} on ${n.name}: ${ip} (block ${r.ipv4[0]!.block})`);
      }

    for (const n of NODES) {
      const args = [
        NODE_BIN,
        '--node',
        n.name,
        '--datastore-dir',
        dsDir,
        '--socket',
        join(dir, `${n.name}.sock`),
        '--dataplane',
        netns ? 'kernel' : 'none',
        '--mtu-file',
        join(dir, `${n.name}.mtu`),
        '--nodename-file',
        join(dir, `${n.name}.nodename`),
        '--http',
        'none',
        '--log-level',
        'warn',
      ];
      const p = netns
        ? spawn('ip', ['netns', 'exec', nsOf(n.name), process.execPath, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      logs.set(n.name, '');
      const keep = (d: Buffer) => logs.set(n.name, (logs.get(n.name)! + d.toString()).slice(-4000));
      p.stdout.on('data', keep);
      p.stderr.on('data', keep);
      p.once('exit', (code, signal) => {
        if (procs.has(n.name) && !stopping)
          say(`tabby-node ${n.name} exited (${code ?? signal}): ${logs.get(n.name)}`);
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
      if (netns) {
        const kernel = spawnSync('ip', ['-n', nsOf(n.name), 'route', 'show', 'proto', '84'], {
          encoding: 'utf8',
        }).stdout;
        out(
          `\n===== ${n.name}: its kernel routes (ip route show proto 84, programmed by felix-lite) =====\n${kernel}`,
        );
        continue;
      }
      // What felix-lite would program on this node (computed, not programmed: see above).
      const snapshot = await loadSnapshot(ds);
      const config = computeBgpConfig(snapshot, n.name);
      const paths = new Map(r.learned.map((l) => [l.prefix, l.nextHops]));
      const desired = computeDesired(
        dataplaneInputs({ paths, config, snapshot }, [{ name: 'eth0', addresses: [`${n.ip}/8`] }]),
      );
      out(`\n===== ${n.name}: kernel routes it would program (felix-lite) =====\n`);
      for (const route of desired.routes) out(`  ${describeRoute(route)}\n`);
      for (const p of desired.problems) out(`  (${p.kind}: ${p.message})\n`);
    }

    let failed = 0;
    if (netns) {
      // Every pod pings every other pod (the routes between nodes came over BGP).
      const ping = (from: string, to: string) =>
        spawnSync('ip', ['netns', 'exec', from, 'ping', '-c', '1', '-W', '2', to], { encoding: 'utf8' })
          .status === 0;
      // The first packets may race the last routes: give each pair a few tries.
      const rows: string[][] = [];
      for (const a of pods) {
        const row = [a.name];
        for (const b of pods) {
          if (a === b) {
            row.push('-');
            continue;
          }
          let ok = false;
          for (let t = 0; t < 5 && !ok; t++) ok = ping(a.ns!, b.ip);
          if (!ok) failed++;
          row.push(ok ? 'ok' : 'FAIL');
        }
        rows.push(row);
      }
      out(
        `\n===== ping matrix (from row to column) =====\n${table(['', ...pods.map((p) => p.name)], rows)}\n`,
      );
      say(failed === 0 ? 'every pod reaches every other pod' : `${failed} pod pairs cannot reach each other`);
    }

    if (opts.once === true) return failed === 0 ? 0 : 1;
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
