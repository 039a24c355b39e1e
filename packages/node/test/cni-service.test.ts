// The CNI plugin delegating its datastore work to tabby-node: a real NodeDaemon and
// DaemonServer in this process on a temp socket, and the plugin as a function (its kernel
// side the in-memory dataplane). ADD, CHECK, DEL, GC and STATUS go over the socket and never
// open the datastore in the plugin; the results and what is stored are those of the plugin
// doing the work itself; every error path keeps its CNI code; the plugin falls back when the
// daemon is gone or serves no CNI, and never after the daemon may have assigned; many ADDs
// and DELs at once never share an address. Raw requests check the service's validation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Speaker } from 'bgp-ts/speaker';
import type {
  AnyResource,
  Backend,
  DatastoreConfig,
  ListResult,
  Watch,
  WatchOptions,
} from '@tabby/datastore';
import { Datastore, Ipam, MemoryBackend, UnavailableError } from '@tabby/datastore';
import type { Kind, ResourceKey } from '@tabby/datastore';
import type { JsonObject, NodeClientOptions, PluginDeps } from '@tabby/cni';
import {
  datastoreSession,
  delegate,
  FakeDataplane,
  openNodeIpam,
  openNodeSession,
  run,
  runIpam,
} from '@tabby/cni';
import { NotHere, ownNetns, serveRun } from '@tabby/cni/serve-run';
import { NodeDaemon } from '../src/daemon/node-daemon.js';
import { DaemonServer, SOCKET_MODE } from '../src/daemon/server.js';
import { until } from './support/until.js';

const PORT = 17711;
const NODE_IP = '127.0.0.71';
const NOW = new Date('2025-03-04T05:06:07Z');

/** A backend shared by the daemon and the plugin's fallback, with a slow or failing datastore on demand. */
class SharedBackend implements Backend {
  readonly type = 'memory';
  /** Writes wait this long first. */
  writeDelayMs = 0;
  /** Writes of these kinds (all: undefined) throw `failWrites`. */
  failWrites: { err: Error; kinds?: readonly Kind[] } | undefined;
  /** Lists throw this. */
  failLists: Error | undefined;
  constructor(readonly inner = new MemoryBackend()) {}
  get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    return this.inner.get(key);
  }
  list(kind: Kind, opts?: { readonly namespace?: string }): Promise<ListResult> {
    return this.failLists === undefined ? this.inner.list(kind, opts) : Promise.reject(this.failLists);
  }
  watch(kind: Kind, opts?: WatchOptions): Watch {
    return this.inner.watch(kind, opts);
  }
  private async gate(kind: Kind): Promise<void> {
    if (this.writeDelayMs > 0) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    const f = this.failWrites;
    if (f !== undefined && (f.kinds === undefined || f.kinds.includes(kind))) throw f.err;
  }
  async create(obj: AnyResource): Promise<AnyResource> {
    await this.gate(obj.kind);
    return this.inner.create(obj);
  }
  async update(obj: AnyResource): Promise<AnyResource> {
    await this.gate(obj.kind);
    return this.inner.update(obj);
  }
  async delete(key: ResourceKey<Kind>, opts?: { readonly resourceVersion?: string }): Promise<AnyResource> {
    await this.gate(key.kind);
    return this.inner.delete(key, opts);
  }
  /** The daemon and the plugin's fallback share it: closing one's session must not close it. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A resource as a manifest holds it, for Datastore.apply. */
const res = (kind: string, name: string, spec: unknown): unknown => ({
  apiVersion: 'projectcalico.org/v3',
  kind,
  metadata: { name },
  spec,
});

/** A datastore with node n1 (a BGP address, no peers), a /26 pool and a /30 pool. */
async function seeded(port: number, ip: string): Promise<SharedBackend> {
  const b = new SharedBackend();
  const ds = new Datastore(b);
  await ds.apply(res('BGPConfiguration', 'default', { listenPort: port, bindMode: 'NodeIP' }));
  await ds.apply(res('IPPool', 'pods', { cidr: '10.90.0.0/26', blockSize: 26 }));
  await ds.apply(res('IPPool', 'tiny', { cidr: '10.91.0.0/30', blockSize: 30 }));
  await ds.apply(res('Node', 'n1', { bgp: { ipv4Address: `${ip}/8` } }));
  return b;
}

interface Running {
  /** The CNI service's log lines. */
  readonly logs: { level: string; msg: string; fields?: Readonly<Record<string, unknown>> }[];
  readonly daemon: NodeDaemon;
  readonly server: DaemonServer;
  readonly socket: string;
  stop(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-svc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function startNode(
  backend: Backend,
  name: string,
  opts: { cni?: boolean; config?: DatastoreConfig; invocations?: FakeDataplane } = {},
): Promise<Running> {
  const ds = new Datastore(backend);
  const daemon = new NodeDaemon({
    datastore: ds,
    nodeName: 'n1',
    createSpeaker: (c, e) => new Speaker(c, {}, e),
    debounceMs: 10,
  });
  daemon.start();
  const socket = join(dir, `${name}.sock`);
  const logs: Running['logs'] = [];
  const server = new DaemonServer({
    daemon,
    socketPath: socket,
    log: (level, msg, fields) => logs.push({ level, msg, ...(fields === undefined ? {} : { fields }) }),
    // Few, quick retries: a failing datastore gives up in milliseconds.
    ...(opts.cni === false
      ? {}
      : {
          cni: {
            datastore: ds,
            ipam: new Ipam({ backend, maxAttempts: 3, backoff: { baseMs: 1, maxMs: 2 } }),
            ...(opts.config === undefined ? {} : { config: opts.config }),
            ...(opts.invocations === undefined
              ? {}
              : {
                  invocations: {
                    dataplane: () => Promise.resolve(opts.invocations!),
                    mtuFile: join(dir, 'no-mtu-file'),
                  },
                }),
          },
        }),
  });
  await server.start();
  return {
    logs,
    daemon,
    server,
    socket,
    stop: async () => {
      await server.stop();
      await daemon.stop();
    },
  };
}

interface Out {
  readonly code: number;
  readonly out: JsonObject | undefined;
  readonly stderr: string;
}

/** The plugin as a function, its datastore work going to `socket` (or, falling back, `backend`). */
class Plugin {
  readonly dataplane = new FakeDataplane();
  /** Sessions the plugin opened on the datastore itself (the fallback). */
  direct = 0;
  readonly namespaceReads: string[] = [];
  readonly namespaces = new Map<string, Record<string, string>>();

  constructor(
    readonly backend: Backend,
    readonly socket: string,
    readonly client: NodeClientOptions = {},
  ) {}

  get deps(): PluginDeps {
    return {
      dataplane: () => Promise.resolve(this.dataplane),
      datastore: (_c, log) => {
        this.direct++;
        return Promise.resolve(datastoreSession(this.backend, log));
      },
      node: (c, log) =>
        c.nodeSocket === false
          ? Promise.resolve(undefined)
          : openNodeSession(c.nodeSocket, log, this.client, c.datastore),
      nodename: () => Promise.resolve('n1'),
      mtuFile: join(dir, 'no-mtu-file'),
      readNamespace: (_k, ns) => {
        this.namespaceReads.push(ns);
        const l = this.namespaces.get(ns);
        return l === undefined ? Promise.reject(new Error(`no namespace ${ns}`)) : Promise.resolve(l);
      },
      now: () => NOW,
    };
  }

  conf(extra: JsonObject = {}): JsonObject {
    return {
      cniVersion: '1.1.0',
      name: 'net1',
      type: 'tabby',
      nodename: 'n1',
      mtu: 1450,
      node_socket: this.socket,
      ipam: { type: 'tabby-ipam' },
      ...extra,
    };
  }

  env(cmd: string, cid: string, ns = 'default'): Record<string, string> {
    const netns = `/run/netns/${cid}`;
    if (cmd === 'ADD' && !this.dataplane.netns.has(netns)) this.dataplane.addNetns(netns);
    return {
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: cid,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=pod-${cid}`,
      CNI_PATH: '/opt/cni/bin',
    };
  }

  async call(env: Record<string, string>, conf: JsonObject): Promise<Out> {
    let stdout = '';
    let stderr = '';
    const code = await run(
      {
        env,
        stdin: JSON.stringify(conf),
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
      },
      this.deps,
    );
    return { code, out: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as JsonObject), stderr };
  }

  async ok(
    cmd: string,
    cid: string,
    extra: JsonObject = {},
    ns = 'default',
  ): Promise<JsonObject | undefined> {
    const r = await this.call(this.env(cmd, cid, ns), this.conf(extra));
    assert.equal(r.code, 0, `${cmd} ${cid}: ${JSON.stringify(r.out)} ${r.stderr}`);
    return r.out;
  }

  async add(cid: string, extra: JsonObject = {}, ns = 'default'): Promise<string> {
    const out = await this.ok('ADD', cid, extra, ns);
    const ips = out?.['ips'] as { address: string }[];
    assert.equal(ips.length, 1);
    return ips[0]!.address;
  }
}

const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function assertError(r: Out, code: number, re: RegExp): void {
  assert.equal(r.code, 1, `expected error ${code}, got ${JSON.stringify(r.out)}`);
  assert.equal(r.out?.['code'], code, JSON.stringify(r.out));
  assert.match(`${text(r.out?.['msg'])}: ${text(r.out?.['details'] ?? '')}`, re);
}

const handles = async (b: Backend): Promise<string[]> =>
  (await b.list('IPAMHandle')).items.map((h) => (h.spec as { handleID: string }).handleID).sort();
const endpoints = async (b: Backend): Promise<string[]> =>
  (await b.list('WorkloadEndpoint')).items.map((w) => `${w.metadata.namespace}/${w.metadata.name}`).sort();

/** One raw request line over a fresh connection, its answer parsed. */
function raw(socket: string, lines: readonly string[]): Promise<JsonObject[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    const got: JsonObject[] = [];
    s.on('connect', () => s.write(lines.map((l) => `${l}\n`).join('')));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        got.push(JSON.parse(buf.slice(0, nl)) as JsonObject);
        buf = buf.slice(nl + 1);
      }
      if (got.length === lines.length) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

describe('tabby-node serving the CNI plugin', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops.reverse()) await s();
  });

  it('does_ADD_CHECK_DEL_and_GC_for_the_plugin_which_never_opens_the_datastore', async () => {
    const backend = await seeded(PORT, NODE_IP);
    const node = await startNode(backend, 'main');
    stops.push(() => node.stop());
    assert.equal(statSync(node.socket).mode & 0o777, SOCKET_MODE);
    assert.equal(SOCKET_MODE, 0o600);
    const p = new Plugin(backend, node.socket);

    const a1 = await p.add('c1');
    const a2 = await p.add('c2');
    assert.deepEqual([a1, a2], ['10.90.0.0/32', '10.90.0.1/32']);
    assert.deepEqual(await handles(backend), ['net1.c1', 'net1.c2']);
    assert.deepEqual(node.logs.slice(0, 2), [
      {
        level: 'info',
        msg: 'CNI: addresses assigned',
        fields: { handle: 'net1.c1', node: 'n1', addresses: ['10.90.0.0'] },
      },
      {
        level: 'info',
        msg: 'CNI: addresses assigned',
        fields: { handle: 'net1.c2', node: 'n1', addresses: ['10.90.0.1'] },
      },
    ]);
    assert.deepEqual(await endpoints(backend), [
      'default/n1-k8s-pod--c1-eth0',
      'default/n1-k8s-pod--c2-eth0',
    ]);
    const wep = (await backend.get({
      kind: 'WorkloadEndpoint',
      name: 'n1-k8s-pod--c1-eth0',
      namespace: 'default',
    }))!;
    assert.deepEqual((wep.spec as { ipNetworks: string[] }).ipNetworks, ['10.90.0.0/32']);

    const added = await p.ok('ADD', 'c3');
    await p.ok('CHECK', 'c3', { prevResult: added! });
    // CHECK reads the reservation and the endpoint through the daemon: a released address shows.
    await raw(node.socket, [JSON.stringify({ cmd: 'cni.release', handle: 'net1.c3' })]);
    const check = await p.call(p.env('CHECK', 'c3'), p.conf({ prevResult: added! }));
    assertError(check, 106, /address 10\.90\.0\.2\/32 is not reserved for handle net1\.c3/);

    await p.ok('DEL', 'c1');
    await p.ok('DEL', 'c1'); // idempotent
    assert.deepEqual(await handles(backend), ['net1.c2']);

    // GC: c2 is no longer valid, c3's endpoint is.
    const gc = await p.call(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      {
        ...p.conf(),
        'cni.dev/valid-attachments': [{ containerID: 'c3', ifname: 'eth0' }],
      },
    );
    assert.equal(gc.code, 0, JSON.stringify(gc.out));
    assert.deepEqual(await handles(backend), []);
    assert.deepEqual(await endpoints(backend), ['default/n1-k8s-pod--c3-eth0']);
    assert.equal(p.direct, 0, 'the plugin opened the datastore itself');

    // tabby-ipam, through the daemon too (closing its client closes the connection).
    let stdout = '';
    const code = await runIpam(
      {
        env: p.env('ADD', 'i1'),
        stdin: JSON.stringify({ ...p.conf(), type: 'tabby-ipam' }),
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: () => undefined },
      },
      {
        tabbyIpam: async (c, i, log) =>
          (await openNodeIpam(c.nodeSocket === false ? undefined : c.nodeSocket, i, log)) ??
          assert.fail('tabby-ipam did not reach the daemon'),
        nodename: () => Promise.resolve('n1'),
        readNamespace: () => Promise.reject(new Error('no namespace reads')),
      },
    );
    assert.equal(code, 0, stdout);
    assert.match(
      JSON.stringify(JSON.parse(stdout)),
      /^\{"cniVersion":"1\.1\.0","ips":\[\{"address":"10\.90\.0\.\d+\/32"\}\]\}$/,
    );
    assert.deepEqual(await handles(backend), ['net1.i1']);
  });

  it('answers_STATUS_with_the_daemons_readiness_then_the_pools_room', async () => {
    const backend = await seeded(PORT + 1, '127.0.0.73');
    // A peer that never answers: start-up readiness waits for every peer.
    await new Datastore(backend).apply(res('Node', 'n2', { bgp: { ipv4Address: '127.0.0.74/8' } }));
    const node = await startNode(backend, 'status');
    stops.push(() => node.stop());
    const p = new Plugin(backend, node.socket);
    const status = (extra: JsonObject = {}) =>
      p.call({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, p.conf(extra));
    await until(() => node.daemon.ready().reason.startsWith('start-up'), 'the daemon in start-up');
    assertError(await status(), 50, /^tabby-node is not ready: start-up: 0 of 1 BGP peers Established/);
    // A delegated IPAM's STATUS is preceded by the daemon's readiness, too.
    assertError(await status({ ipam: { type: 'host-local' } }), 50, /tabby-node is not ready: start-up/);

    await backend.delete({ kind: 'Node', name: 'n2' });
    await until(() => node.daemon.ready().ready, 'ready without peers');
    const ok = await status();
    assert.equal(ok.code, 0, JSON.stringify(ok.out));

    // The /30 pool, asked for by name, fills up: STATUS says which pool and how full.
    const tiny = { ipam: { type: 'tabby-ipam', ipv4_pools: ['10.91.0.0/30'] } };
    for (const c of ['t1', 't2', 't3', 't4']) await p.add(c, tiny);
    assertError(await status(tiny), 50, /IPv4 pools exhausted: tiny \(10\.91\.0\.0\/30\): 4 of 4 in use/);
    assertError(await p.call(p.env('ADD', 't5'), p.conf(tiny)), 101, /no address available/);
    assert.equal(p.direct, 0);
  });

  it('maps_every_daemon_error_to_the_code_the_plugin_gives_itself', async () => {
    const backend = await seeded(PORT + 2, '127.0.0.75');
    const node = await startNode(backend, 'errors');
    stops.push(() => node.stop());
    const p = new Plugin(backend, node.socket);

    // The Node does not exist: IPAM refuses (102), as in-process.
    assertError(
      await p.call(p.env('ADD', 'e1'), p.conf({ nodename: 'ghost' })),
      102,
      /Node ghost does not exist/,
    );
    // No pool for the family: 101.
    assertError(
      await p.call(
        p.env('ADD', 'e2'),
        p.conf({ ipam: { type: 'tabby-ipam', assign_ipv4: false, assign_ipv6: true } }),
      ),
      101,
      /no IPv6 pool is eligible/,
    );
    // The datastore fails every IPAM write: the retries run out, try again later (11).
    backend.failWrites = {
      err: new UnavailableError('etcd is down'),
      kinds: ['IPAMBlock', 'BlockAffinity', 'IPAMHandle'],
    };
    assertError(
      await p.call(p.env('ADD', 'e3'), p.conf()),
      11,
      /datastore is busy or unreachable.*etcd is down/,
    );
    backend.failWrites = undefined;
    // STATUS cannot read the pools: 50, the datastore unreachable.
    backend.failLists = new UnavailableError('etcd is down');
    await until(() => node.daemon.ready().ready, 'the daemon ready');
    assertError(
      await p.call({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, p.conf()),
      50,
      /^the datastore is unreachable: etcd is down$/,
    );
    backend.failLists = undefined;
    // The endpoint cannot be written: ADD is undone through the daemon (address released), 11.
    backend.failWrites = { err: new UnavailableError('etcd is down'), kinds: ['WorkloadEndpoint'] };
    assertError(
      await p.call(p.env('ADD', 'e4'), p.conf()),
      11,
      /writing WorkloadEndpoint default\/n1-k8s-pod--e4-eth0/,
    );
    backend.failWrites = undefined;
    assert.deepEqual(await handles(backend), []);
    assert.equal(p.dataplane.hostVeths.size, 0, 'the veth was removed');
    // Pools that select by namespace: the labels are read once, only then, and sent along.
    await new Datastore(backend).apply(
      res('IPPool', 'prod', {
        cidr: '10.92.0.0/28',
        blockSize: 28,
        namespaceSelector: "tier == 'prod'",
        allowedUses: ['Workload'],
      }),
    );
    p.namespaces.set('shop', { tier: 'prod', 'kubernetes.io/metadata.name': 'shop' });
    const kube = { kubernetes: { kubeconfig: '/etc/kubeconfig' } };
    assert.match(await p.add('e5', kube, 'shop'), /^10\.9[0-2]\./);
    assert.deepEqual(p.namespaceReads, ['shop']);
    // A namespace the API server does not know: the reader's error (102) comes through as it is.
    assertError(await p.call(p.env('ADD', 'e6', 'ghost-ns'), p.conf(kube)), 102, /no namespace ghost-ns/);
    assert.deepEqual(p.namespaceReads, ['shop', 'ghost-ns']);
    assert.deepEqual(await handles(backend), ['net1.e5']);
    assert.equal(p.direct, 0);
  });

  it('assigns_the_address_CNI_ARGS_names_as_in_process', async () => {
    const backend = await seeded(PORT + 9, '127.0.0.82');
    const node = await startNode(backend, 'explicit');
    stops.push(() => node.stop());
    const p = new Plugin(backend, node.socket);
    const asking = (cid: string, ip: string) => ({
      ...p.env('ADD', cid),
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-${cid};IP=${ip}`,
    });
    const got = await p.call(asking('x1', '10.90.0.33'), p.conf());
    assert.equal(got.code, 0, JSON.stringify(got.out));
    assert.equal((got.out?.['ips'] as { address: string }[])[0]?.address, '10.90.0.33/32');
    // Taken already, through the daemon or in-process: the same refusal (102) naming the holder.
    for (const socket of [{}, { node_socket: 'none' }])
      assertError(
        await p.call(asking('x2', '10.90.0.33'), p.conf(socket)),
        102,
        /address 10\.90\.0\.33 is already assigned to handle net1\.x1/,
      );
    assertError(
      await p.call(asking('x3', '10.99.0.1'), p.conf()),
      102,
      /10\.99\.0\.1 is not in any enabled IP pool/,
    );
    assert.deepEqual(await handles(backend), ['net1.x1']);
    assert.equal(p.direct, 1);
  });

  it('never_falls_back_once_the_daemon_may_have_assigned_and_DEL_releases_what_it_did', async () => {
    const backend = await seeded(PORT + 3, '127.0.0.76');
    const node = await startNode(backend, 'slow');
    stops.push(() => node.stop());
    const p = new Plugin(backend, node.socket, { requestTimeoutMs: 150 });
    backend.writeDelayMs = 100; // each write: an assignment takes several
    const r = await p.call(p.env('ADD', 's1'), p.conf());
    assertError(
      r,
      11,
      /tabby-node stopped answering.*no answer to cni\.assign within 150 ms.*may have assigned addresses to handle net1\.s1: the runtime's DEL of this container releases them/,
    );
    assert.equal(p.direct, 0, 'the plugin fell back after sending the assignment');
    await until(
      async () => (await handles(backend)).includes('net1.s1'),
      'the daemon finishing the assignment',
    );
    backend.writeDelayMs = 0;
    await new Plugin(backend, node.socket).ok('DEL', 's1');
    assert.deepEqual(await handles(backend), []);
  });

  it('falls_back_to_the_datastore_when_the_daemon_is_gone_or_serves_no_CNI', async () => {
    const backend = await seeded(PORT + 4, '127.0.0.77');
    const node = await startNode(backend, 'gone');
    const p = new Plugin(backend, node.socket);
    const viaDaemon = await p.add('f1');
    await node.stop(); // its socket goes with it
    const fallback = await p.add('f2');
    assert.equal(p.direct, 1);
    assert.deepEqual([viaDaemon, fallback], ['10.90.0.0/32', '10.90.0.1/32']);
    await p.ok('DEL', 'f1'); // what the daemon did, undone in-process
    assert.deepEqual(await handles(backend), ['net1.f2']);

    // A daemon without the CNI service: hello is refused, so the plugin does the work, and says why.
    const old = await startNode(backend, 'nocni', { cni: false });
    stops.push(() => old.stop());
    const q = new Plugin(backend, old.socket);
    const r = await q.call(q.env('ADD', 'f3'), q.conf({ log_level: 'warn' }));
    assert.equal(r.code, 0, JSON.stringify(r.out));
    assert.equal(q.direct, 1);
    assert.match(
      r.stderr,
      /does not serve CNI requests \(this tabby-node serves no CNI requests\): the datastore work is done in this process/,
    );
    // A daemon on another datastore than the config names: the config's is used.
    const other = await startNode(backend, 'other', {
      config: { type: 'yaml', dir: '/var/lib/tabby/other' },
    });
    stops.push(() => other.stop());
    const o = new Plugin(backend, other.socket);
    const elsewhere = await o.call(
      o.env('ADD', 'f4'),
      o.conf({ log_level: 'warn', datastore: { type: 'yaml', dir: '/var/lib/tabby/mine' } }),
    );
    assert.equal(elsewhere.code, 0, JSON.stringify(elsewhere.out));
    assert.equal(o.direct, 1);
    assert.match(
      elsewhere.stderr,
      /works on \{"type":"yaml","dir":"\/var\/lib\/tabby\/other"\}, not the config's datastore/,
    );
    // node_socket none: the daemon is not even asked.
    const n = new Plugin(backend, node.socket);
    await n.ok('DEL', 'f3', { node_socket: 'none' });
    assert.equal(n.direct, 1);
  });

  it('gives_every_pod_its_own_address_with_many_ADD_and_DEL_at_once', async () => {
    const backend = await seeded(PORT + 5, '127.0.0.78');
    const node = await startNode(backend, 'busy');
    stops.push(() => node.stop());
    const p = new Plugin(backend, node.socket);
    const first = Array.from({ length: 30 }, (_, i) => `a${i}`);
    const got = await Promise.all(first.map((c) => p.add(c)));
    assert.equal(new Set(got).size, first.length, `an address was handed out twice: ${got.join(' ')}`);
    // Half go while as many new ones come.
    const second = Array.from({ length: 15 }, (_, i) => `b${i}`);
    const [, more] = await Promise.all([
      Promise.all(first.slice(0, 15).map((c) => p.ok('DEL', c))),
      Promise.all(second.map((c) => p.add(c))),
    ]);
    const held = [...got.slice(15), ...more];
    assert.equal(new Set(held).size, held.length, `an address is held twice: ${held.join(' ')}`);
    assert.equal((await handles(backend)).length, 30);
    const blocks = (await backend.list('IPAMBlock')).items;
    const inUse = blocks.flatMap((b) =>
      (b.spec as { allocations: (number | null)[] }).allocations.filter((x) => x !== null),
    );
    assert.equal(inUse.length, 30, 'allocations in the blocks match the handles');
    await Promise.all([...first.slice(15), ...second].map((c) => p.ok('DEL', c)));
    assert.deepEqual(await handles(backend), []);
    assert.deepEqual(await endpoints(backend), []);
    assert.equal(p.direct, 0);
  });

  it('leaves_the_datastore_as_the_plugin_alone_would', async () => {
    // The same invocations, once through the daemon and once in-process, on two equal datastores.
    const outcome = async (delegate: boolean, port: number, ip: string) => {
      const backend = await seeded(port, ip);
      const node = await startNode(backend, `same-${port}`);
      try {
        const p = new Plugin(backend, node.socket);
        const conf = delegate ? {} : { node_socket: 'none' };
        const results = [];
        for (const [cmd, cid] of [
          ['ADD', 'x1'],
          ['ADD', 'x2'],
          ['DEL', 'x1'],
          ['ADD', 'x3'],
        ] as const)
          results.push((await p.call(p.env(cmd, cid), p.conf(conf))).out ?? null);
        // Less what the clock writes (claim times, sequence numbers).
        const clockless = (spec: unknown): unknown =>
          Object.fromEntries(
            Object.entries(spec as Record<string, unknown>).filter(
              ([k]) => k !== 'affinityClaimTime' && !k.startsWith('sequenceNumber'),
            ),
          );
        const state = async (kind: Kind) =>
          (await backend.list(kind)).items
            .map((o) => ({
              name: o.metadata.name,
              namespace: o.metadata.namespace,
              labels: o.metadata.labels,
              spec: clockless(o.spec),
            }))
            .sort((a, b) => (a.name < b.name ? -1 : 1));
        return {
          results,
          direct: p.direct,
          stored: {
            blocks: await state('IPAMBlock'),
            handles: await state('IPAMHandle'),
            affinities: await state('BlockAffinity'),
            endpoints: await state('WorkloadEndpoint'),
          },
        };
      } finally {
        await node.stop();
      }
    };
    const viaDaemon = await outcome(true, PORT + 6, '127.0.0.79');
    const inProcess = await outcome(false, PORT + 7, '127.0.0.80');
    assert.equal(viaDaemon.direct, 0);
    assert.equal(inProcess.direct, 4);
    assert.deepEqual(viaDaemon.results, inProcess.results);
    assert.deepEqual(viaDaemon.stored, inProcess.stored);
    assert.equal(viaDaemon.stored.endpoints.length, 2);
  });

  it('stops_after_the_requests_in_hand_and_closes_idle_connections', { timeout: 10_000 }, async () => {
    const backend = await seeded(PORT + 10, '127.0.0.83');
    const node = await startNode(backend, 'stopping');
    backend.writeDelayMs = 30;
    const idle = net.connect(node.socket);
    const idleClosed = new Promise((r) => idle.once('close', r));
    await new Promise((r) => idle.once('connect', r));
    const answers = raw(node.socket, [
      JSON.stringify({ cmd: 'cni.hello', protocol: 1 }),
      JSON.stringify({
        cmd: 'cni.assign',
        assignment: { kind: 'auto', handle: 'h1', node: 'n1', attrs: {}, num4: 1, num6: 0, pools: [] },
      }),
    ]);
    await until(
      async () => (await backend.list('BlockAffinity')).items.length > 0,
      'the assignment under way',
    );
    await node.stop();
    const [, assigned] = await answers;
    assert.deepEqual(assigned, { ok: true, addresses: ['10.90.0.0'] });
    await idleClosed;
  });

  it('checks_every_request_and_answers_each_connection_in_order', async () => {
    const backend = await seeded(PORT + 8, '127.0.0.81');
    const node = await startNode(backend, 'raw');
    stops.push(() => node.stop());
    const assignment = (extra: JsonObject) => ({
      kind: 'auto',
      handle: 'h1',
      node: 'n1',
      attrs: {},
      num4: 1,
      num6: 0,
      pools: [],
      ...extra,
    });
    const answers = await raw(node.socket, [
      'not json',
      JSON.stringify({ cmd: 'cni.frobnicate' }),
      JSON.stringify({ cmd: 'cni.assign' }),
      JSON.stringify({ cmd: 'cni.assign', assignment: assignment({ num4: 'one' }) }),
      JSON.stringify({ cmd: 'cni.assign', assignment: assignment({ num4: 0 }) }),
      JSON.stringify({ cmd: 'cni.release', handle: 'h1', force: true }),
      JSON.stringify({ cmd: 'cni.endpoint.get', key: { namespace: 'default' } }),
      JSON.stringify({ cmd: 'cni.hello', protocol: 2 }),
      JSON.stringify({ cmd: 'cni.hello', protocol: 1 }),
      // Pipelined: a slow assignment, then a quick question; answered in this order.
      JSON.stringify({ cmd: 'cni.assign', assignment: assignment({}) }),
      JSON.stringify({ cmd: 'cni.addresses', handle: 'h1' }),
      JSON.stringify({ cmd: 'status' }),
    ]);
    const [
      notJson,
      unknown,
      noAssignment,
      badCount,
      noAddress,
      extra,
      noName,
      v2,
      hello,
      assigned,
      held,
      status,
    ] = answers;
    assert.deepEqual(notJson, { ok: false, error: 'the request is not JSON' });
    assert.deepEqual(unknown, { ok: false, error: 'unknown command "cni.frobnicate"', code: 'BadRequest' });
    assert.deepEqual(noAssignment, {
      ok: false,
      code: 'BadRequest',
      error: 'malformed CNI request: assignment must be an object',
    });
    assert.equal(
      badCount?.['error'],
      'malformed CNI request: assignment.num4 must be a whole number from 0 to 16',
    );
    assert.equal(
      noAddress?.['error'],
      'malformed CNI request: assignment asks for no address (num4 and num6 are 0)',
    );
    assert.equal(extra?.['error'], 'malformed CNI request: force is not a field here (cmd, handle)');
    assert.equal(noName?.['error'], 'malformed CNI request: key.name must be a string');
    assert.deepEqual(v2, {
      ok: false,
      code: 'Unsupported',
      error: 'this tabby-node speaks CNI protocol 1, not 2',
    });
    assert.deepEqual(hello, { ok: true, protocol: 1, node: 'n1', datastore: null });
    assert.deepEqual(assigned, { ok: true, addresses: ['10.90.0.0'] });
    assert.deepEqual(held, { ok: true, addresses: ['10.90.0.0'] });
    assert.equal(status?.['ok'], true);

    // Explicit assignment: the address asked for, all or nothing.
    const explicit = (handle: string, ips: string[]) =>
      JSON.stringify({
        cmd: 'cni.assign',
        assignment: { kind: 'explicit', handle, node: 'n1', attrs: { pod: 'x' }, ips },
      });
    const [e1, e2, e3, h3] = await raw(node.socket, [
      explicit('h2', ['10.90.0.40']),
      explicit('h3', ['10.90.0.41', '10.90.0.40']),
      explicit('h4', ['10.99.0.1']),
      JSON.stringify({ cmd: 'cni.addresses', handle: 'h3' }),
    ]);
    assert.deepEqual(e1, { ok: true, addresses: ['10.90.0.40'] });
    assert.equal(e2?.['code'], 'AddressInUse');
    assert.match(
      text(e2?.['error']),
      /address 10\.90\.0\.40 is already assigned to handle h2 \(node=n1, pod=x\)/,
    );
    assert.deepEqual(h3, { ok: true, addresses: [] }, '10.90.0.41 was given back');
    assert.equal(e3?.['code'], 'AddressNotInPool');

    // A line past the limit is refused and the connection closed.
    const big = await raw(node.socket, ['x'.repeat((1 << 20) + 10)]);
    assert.deepEqual(big, [{ ok: false, error: 'a request longer than 1048576 bytes' }]);
  });
});

describe('tabby-node running whole CNI invocations (cni.run)', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops.reverse()) await s();
  });

  /** The plugin's first step, as bin/tabby.js takes it: delegate() to `socket`, its output captured. */
  async function delegated(
    socket: string,
    env: Record<string, string>,
    conf: JsonObject,
  ): Promise<{ code: number | undefined; out: JsonObject | undefined; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await delegate(
      env,
      JSON.stringify({ ...conf, node_socket: conf['node_socket'] === 'none' ? 'none' : socket }),
      { write: (x: string) => (stdout += x) },
      { write: (x: string) => (stderr += x) },
      { connectTimeoutMs: 500, runTimeoutMs: 5000 },
    );
    return { code, out: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as JsonObject), stderr };
  }

  it('runs_ADD_CHECK_and_DEL_in_the_daemon_with_its_dataplane_and_datastore', async () => {
    const backend = await seeded(PORT + 20, '127.0.0.91');
    const dataplane = new FakeDataplane();
    const node = await startNode(backend, 'runs', { invocations: dataplane });
    stops.push(() => node.stop());
    // The plugin's own dependencies are never used: its dataplane stays empty, its datastore closed.
    const p = new Plugin(backend, node.socket);
    dataplane.addNetns('/run/netns/r1');
    const added = await delegated(node.socket, p.env('ADD', 'r1'), p.conf({ cniVersion: '1.0.0' }));
    assert.equal(added.code, 0, JSON.stringify(added));
    assert.equal(added.out?.['cniVersion'], '1.0.0');
    assert.deepEqual(added.out?.['ips'], [{ address: '10.90.0.0/32', gateway: '169.254.1.1', interface: 1 }]);
    assert.equal(dataplane.hostVeths.size, 1, 'the daemon made the veth');
    assert.equal(p.dataplane.hostVeths.size + p.direct, 0, 'the plugin did nothing itself');
    assert.deepEqual(await handles(backend), ['net1.r1']);
    assert.deepEqual(await endpoints(backend), ['default/n1-k8s-pod--r1-eth0']);
    assert.ok(node.logs.some((l) => l.msg === 'CNI ADD run' && l.fields?.['exitCode'] === 0));

    const checked = await delegated(node.socket, p.env('CHECK', 'r1'), p.conf({ prevResult: added.out }));
    assert.deepEqual(checked, { code: 0, out: undefined, stderr: '' });
    // An error inside the run comes back as the plugin would print it: CHECK after the host route went.
    dataplane.calls.length = 0;
    const veth = [...dataplane.hostVeths.values()][0]!;
    veth.routes.clear();
    const broken = await delegated(node.socket, p.env('CHECK', 'r1'), p.conf({ prevResult: added.out }));
    assert.equal(broken.code, 1);
    assert.equal(broken.out?.['code'], 106, JSON.stringify(broken.out));

    for (let i = 0; i < 2; i++) {
      const del = await delegated(node.socket, p.env('DEL', 'r1'), p.conf());
      assert.deepEqual(del, { code: 0, out: undefined, stderr: '' }, `DEL ${i + 1}`);
    }
    assert.deepEqual(await handles(backend), []);
    assert.deepEqual(await endpoints(backend), []);
    assert.equal(dataplane.hostVeths.size, 0);
  });

  it('is_declined_with_nothing_done_when_the_daemon_cannot_run_it_as_the_plugin_would', async () => {
    const backend = await seeded(PORT + 21, '127.0.0.92');
    const dataplane = new FakeDataplane();
    const node = await startNode(backend, 'declines', {
      invocations: dataplane,
      config: { type: 'yaml', dir: '/var/lib/tabby/datastore' },
    });
    stops.push(() => node.stop());
    const none = await startNode(backend, 'no-invocations');
    stops.push(() => none.stop());
    const p = new Plugin(backend, node.socket);
    dataplane.addNetns('/run/netns/d1');
    const declinedBy = async (socket: string, env: Record<string, string>, conf: JsonObject) => {
      const r = await delegated(socket, env, conf);
      assert.deepEqual(r, { code: undefined, out: undefined, stderr: '' });
    };
    // A daemon without a kernel dataplane (not root), another datastore, a delegated IPAM,
    // node_socket none, and the commands the plugin always runs itself.
    await declinedBy(none.socket, p.env('ADD', 'd1'), p.conf());
    await declinedBy(
      node.socket,
      p.env('ADD', 'd1'),
      p.conf({ datastore: { type: 'etcdv3', endpoints: ['http://127.0.0.1:1'] } }),
    );
    await declinedBy(
      node.socket,
      p.env('ADD', 'd1'),
      p.conf({ ipam: { type: 'host-local', subnet: '10.1.0.0/24' } }),
    );
    await declinedBy(node.socket, p.env('ADD', 'd1'), p.conf({ node_socket: 'none' }));
    await declinedBy(node.socket, { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, p.conf());
    await declinedBy(join(dir, 'nobody.sock'), p.env('ADD', 'd1'), p.conf());
    assert.equal(dataplane.calls.length, 0);
    assert.deepEqual(await handles(backend), []);

    // What the plugin sees and the daemon must see alike: the pod's namespace file, and the
    // network namespace they run in.
    const req = {
      cmd: 'cni.run' as const,
      protocol: 1,
      env: p.env('ADD', 'd1'),
      stdin: JSON.stringify(p.conf()),
      netnsVisible: true,
      hostNetns: ownNetns(),
    };
    const deps = {
      answer: () => Promise.reject(new Error('nothing may be asked')),
      node: 'n1',
      datastore: null,
      dataplane: () => Promise.resolve(dataplane),
    };
    await assert.rejects(
      serveRun(req, deps),
      (e: unknown) => e instanceof NotHere && /\/run\/netns\/d1 is not visible to tabby-node/.test(e.message),
    );
    await assert.rejects(
      serveRun({ ...req, netnsVisible: false, hostNetns: ownNetns() + 1 }, deps),
      (e: unknown) => e instanceof NotHere && /another network namespace/.test(e.message),
    );
    await assert.rejects(
      serveRun(
        { ...req, netnsVisible: false },
        { ...deps, dataplane: () => Promise.reject(new Error('no addon')) },
      ),
      (e: unknown) => e instanceof NotHere && /no kernel dataplane: no addon/.test(e.message),
    );
    await assert.rejects(
      serveRun({ ...req, protocol: 2 }, deps),
      (e: unknown) => e instanceof NotHere && /protocol 1, not 2/.test(e.message),
    );
  });

  it('never_runs_it_again_in_the_plugin_once_sent_and_falls_back_only_on_nothing_done', async () => {
    // A daemon that reads the request and dies, one that answers like an older tabby-node
    // (no cni.run), and one whose answer is not understood.
    const serve = (name: string, onLine: (s: net.Socket) => void): Promise<string> =>
      new Promise((resolve) => {
        const path = join(dir, `${name}.sock`);
        const srv = net.createServer((s) => s.once('data', () => onLine(s)));
        stops.push(() => new Promise((r) => srv.close(() => r())));
        srv.listen(path, () => resolve(path));
      });
    const dies = await serve('dies', (s) => s.destroy());
    const older = await serve('older', (s) =>
      s.write(
        '{"ok":false,"error":"malformed CNI request: cmd \\"cni.run\\" is not a CNI request","code":"BadRequest"}\n',
      ),
    );
    const garbled = await serve('garbled', (s) => s.write('{"ok":true}\n'));
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'x1',
      CNI_NETNS: '/run/netns/x1',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
    };
    const conf = { cniVersion: '0.4.0', name: 'net1', type: 'tabby', ipam: { type: 'tabby-ipam' } };
    const lost = await delegated(dies, env, { ...conf, node_socket: dies });
    assert.equal(lost.code, 1);
    assert.equal(lost.out?.['cniVersion'], '0.4.0');
    assert.equal(lost.out?.['code'], 11);
    assert.match(text(lost.out?.['details']), /the connection closed; it may have done part of the work/);
    assert.equal((await delegated(older, env, { ...conf, node_socket: older })).code, undefined);
    const bad = await delegated(garbled, env, { ...conf, node_socket: garbled });
    assert.equal(bad.code, 1);
    assert.equal(bad.out?.['code'], 100);
    assert.match(text(bad.out?.['msg']), /answer was not understood/);
  });
});
