// The plugin's side of tabby-node's CNI service against a stand-in daemon (./node-fake.ts):
// when it falls back to doing the work itself (no socket, a stale one, a file, no answer to
// hello, an older daemon, another protocol) and when it must not (the daemon stopped
// answering after an assignment was sent: 11, the outcome named); every daemon error code as
// the CNI code the in-process path gives; namespace labels sent only when asked for; STATUS
// from the daemon's readiness and the pools; the executables' own wiring (main.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { NodeClientOptions } from '../src/node-api/client.js';
import { openNodeSession } from '../src/node-api/client.js';
import { mainTabby, mainTabbyIpam } from '../src/main.js';
import type { JsonObject } from '../src/spec/result.js';
import type { FakeHandler } from './node-fake.js';
import { FakeNode, memoryDaemon } from './node-fake.js';
import { assertError, attachEnv, CID, conf, text, World } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-node-'));
let seq = 0;
const sock = (): string => join(dir, `n${++seq}.sock`);

/** A World whose datastore work goes to the daemon at `socket` when it answers. */
function world(opts: NodeClientOptions = {}): World {
  const w = new World();
  w.deps = {
    ...w.deps,
    node: (c, log) =>
      c.nodeSocket === false
        ? Promise.resolve(undefined)
        : openNodeSession(c.nodeSocket, log, opts, c.datastore),
  };
  return w;
}

const on = (socket: string, extra: JsonObject = {}): JsonObject =>
  conf({ node_socket: socket, nodename: 'node-1', mtu: 1450, log_level: 'debug', ...extra });

/** The daemon answers as memoryDaemon does, except for `cmd`. */
function except(cmd: string, reply: FakeHandler): FakeHandler {
  const d = memoryDaemon();
  return (req) => (req['cmd'] === cmd ? reply(req) : d(req));
}

const STATUS = { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' };

describe('the plugin and tabby-node', () => {
  const fakes: FakeNode[] = [];
  const fake = async (handler?: FakeHandler, path = sock()): Promise<FakeNode> => {
    const f = await FakeNode.start(path, handler);
    fakes.push(f);
    return f;
  };
  after(async () => {
    for (const f of fakes) await f.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delegates_ADD_CHECK_and_DEL_and_opens_no_datastore', async () => {
    const f = await fake();
    const w = world();
    const added = await w.add(on(f.path));
    assert.deepEqual(added['ips'], [{ address: '10.80.0.1/32', gateway: '169.254.1.1', interface: 1 }]);
    const check = await w.invoke(attachEnv('CHECK'), on(f.path, { prevResult: added }));
    assert.equal(check.code, 0, check.stdout);
    const del = await w.invoke(attachEnv('DEL'), on(f.path));
    assert.equal(del.code, 0, del.stdout);
    assert.equal(w.sessions.opened, 0);
    assert.deepEqual(f.cmds, [
      'cni.hello',
      'cni.assign',
      'cni.endpoint.put',
      'cni.hello',
      'cni.addresses',
      'cni.endpoint.get',
      'cni.hello',
      'cni.endpoint.delete',
      'cni.release',
    ]);
    assert.equal(f.connections, 3, 'one connection per invocation');
    const assign = f.requests[1]!;
    assert.deepEqual(assign, {
      cmd: 'cni.assign',
      assignment: {
        kind: 'auto',
        handle: `k8s-pod-network.${CID}`,
        node: 'node-1',
        attrs: { namespace: 'default', pod: 'nginx', timestamp: '2025-01-02T03:04:05.000Z' },
        num4: 1,
        num6: 0,
        pools: [],
      },
    });
  });

  describe('falls back to the datastore, before asking anything that changes state, when', () => {
    const fallsBack = async (
      path: string,
      log: RegExp,
      opts: NodeClientOptions = {},
      extra: JsonObject = {},
    ) => {
      const w = world(opts);
      const r = await w.invoke(attachEnv('ADD'), on(path, extra));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(w.sessions.opened, 1, 'the plugin opened the datastore itself');
      assert.deepEqual(w.ipam.inUse, ['10.65.0.1/32'], 'the in-process IPAM assigned');
      assert.match(r.stderr, log);
    };

    it('there_is_no_socket', () =>
      fallsBack(
        join(dir, 'absent.sock'),
        /debug: no tabby-node socket at .*absent\.sock: the datastore work is done in this process/,
      ));

    it('the_socket_is_stale', async () => {
      // A daemon killed hard leaves its socket behind: connecting is refused.
      const path = sock();
      const child = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}); setInterval(() => {}, 1e6)`,
      ]);
      while (!existsSync(path)) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.ok(existsSync(path));
      await fallsBack(
        path,
        /warn: tabby-node's socket .* does not answer \(connect ECONNREFUSED .*\): the datastore work is done/,
      );
    });

    it('the_path_is_no_socket', async () => {
      const path = join(dir, 'plain-file');
      writeFileSync(path, '');
      await fallsBack(path, /warn: tabby-node's socket .*plain-file does not answer/);
    });

    it('hello_goes_unanswered', async () => {
      const f = await fake(except('cni.hello', () => ({ hang: true })));
      await fallsBack(
        f.path,
        /tabby-node at .* does not serve CNI requests \(tabby-node at .*: no answer to cni\.hello within 300 ms\)/,
        {
          helloTimeoutMs: 300,
        },
      );
      assert.deepEqual(f.cmds, ['cni.hello']);
    });

    it('the_daemon_is_older_and_knows_no_CNI', async () => {
      const f = await fake(except('cni.hello', () => ({ ok: false, error: 'unknown command "cni.hello"' })));
      await fallsBack(f.path, /does not serve CNI requests \(unknown command "cni\.hello"\)/);
    });

    it('the_daemon_speaks_another_protocol', async () => {
      const f = await fake(
        except('cni.hello', () => ({ ok: true, protocol: 2, node: 'node-1', datastore: null })),
      );
      await fallsBack(f.path, /speaks CNI protocol 2, not 1/);
    });

    it('the_daemon_works_on_another_datastore_than_the_config_names', async () => {
      const f = await fake(memoryDaemon({ datastore: { type: 'yaml', dir: '/var/lib/tabby/a' } }));
      await fallsBack(
        f.path,
        /tabby-node at .* works on \{"type":"yaml","dir":"\/var\/lib\/tabby\/a"\}, not the config's datastore \{"type":"yaml","dir":"\/var\/lib\/tabby\/b"\}/,
        {},
        {
          datastore: { type: 'yaml', dir: '/var/lib/tabby/b' },
        },
      );
    });

    it('the_config_says_none', async () => {
      const f = await fake();
      const w = world();
      const r = await w.invoke(attachEnv('ADD'), on(f.path, { node_socket: 'none' }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(w.sessions.opened, 1);
      assert.equal(f.connections, 0);
    });
  });

  it('delegates_when_the_daemons_datastore_is_the_one_the_config_names', async () => {
    const cases: [JsonObject, JsonObject][] = [
      [
        { type: 'yaml', dir: '/var/lib/tabby/a' },
        { type: 'yaml', dir: '/var/lib/tabby/a/' },
      ],
      [
        { type: 'etcdv3', endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], prefix: '/t' },
        { type: 'etcdv3', endpoints: 'https://10.0.0.2:2379/', prefix: '/t' },
      ],
      [{ type: 'kubernetes' }, { type: 'kubernetes', kubeconfig: '/etc/cni/net.d/tabby-kubeconfig' }],
    ];
    for (const [daemon, config] of cases) {
      const f = await fake(memoryDaemon({ datastore: daemon }));
      const w = world();
      await w.add(on(f.path, { datastore: config }));
      assert.equal(w.sessions.opened, 0, JSON.stringify(config));
    }
    // The same endpoints under another prefix are another datastore.
    const f = await fake(
      memoryDaemon({ datastore: { type: 'etcdv3', endpoints: ['https://10.0.0.1:2379'] } }),
    );
    const w = world();
    await w.add(
      on(f.path, { datastore: { type: 'etcdv3', endpoints: ['https://10.0.0.1:2379'], prefix: '/t' } }),
    );
    assert.equal(w.sessions.opened, 1);
  });

  it('refuses_a_node_socket_that_is_not_an_absolute_path', async () => {
    const r = await world().invoke(attachEnv('ADD'), on('run/tabby.sock'));
    assertError(
      r,
      7,
      /invalid network config: node_socket: must be an absolute path or none, not "run\/tabby.sock"/,
    );
  });

  describe('once the daemon said hello, never falls back', () => {
    const fails = async (handler: FakeHandler, code: number, re: RegExp, opts: NodeClientOptions = {}) => {
      const f = await fake(handler);
      const w = world(opts);
      const r = await w.invoke(attachEnv('ADD'), on(f.path));
      assertError(r, code, re);
      assert.equal(w.sessions.opened, 0, 'fell back after the daemon said hello');
      assert.deepEqual(w.ipam.inUse, []);
      return { f, w, r };
    };

    it('when_an_assignment_goes_unanswered', async () => {
      await fails(
        except('cni.assign', () => ({ hang: true })),
        11,
        /IPAM allocation for k8s-pod-network\.c0ffee01: tabby-node stopped answering: .*no answer to cni\.assign within 300 ms; it may have assigned addresses to handle k8s-pod-network\.c0ffee01: the runtime's DEL of this container releases them/,
        { requestTimeoutMs: 300 },
      );
    });

    it('when_the_connection_closes_during_an_assignment', async () => {
      await fails(
        except('cni.assign', () => ({ close: true })),
        11,
        /stopped answering: .*the connection closed; it may have assigned/,
      );
    });

    it('when_the_answer_is_not_understood', async () => {
      await fails(
        except('cni.assign', () => ({ raw: '{"ok":true,"addresses":"10.0.0.1"}' })),
        100,
        /tabby-node's answer was not understood: addresses must be a list of strings; it may have assigned/,
      );
      await fails(
        except('cni.assign', () => ({ raw: 'garbage' })),
        100,
        /not understood: the message is not JSON: garbage/,
      );
    });

    it('when_the_endpoint_write_goes_unanswered_and_says_what_rollback_could_not_undo', async () => {
      const { f, r, w } = await fails(
        except('cni.endpoint.put', () => ({ hang: true })),
        11,
        /writing WorkloadEndpoint default\/node--1-k8s-nginx-eth0: tabby-node stopped answering/,
        { requestTimeoutMs: 300 },
      );
      // Not sent: the connection had gone with the endpoint write. The runtime's DEL releases it.
      assert.match(
        text(r.out?.['details']),
        /rollback: release of 10\.80\.0\.1\/32 failed: IPAM release of k8s-pod-network\.c0ffee01: tabby-node stopped answering: tabby-node at .*: not sent, the connection was lost \(no answer to cni\.endpoint\.put within 300 ms\)$/,
      );
      assert.equal(w.dataplane.hostVeths.size, 0, 'the veth was still removed');
      assert.deepEqual(f.cmds, ['cni.hello', 'cni.assign', 'cni.endpoint.put']);
    });
  });

  it('gives_each_daemon_error_the_code_the_plugin_gives_it_in_process', async () => {
    const cases: [string, string, string, number, RegExp][] = [
      [
        'cni.assign',
        'PoolExhausted',
        'only 0 of 1',
        101,
        /IPAM allocation for .*: no address available: only 0 of 1/,
      ],
      ['cni.assign', 'NoEligiblePool', 'no IPv4 pool', 101, /no address available/],
      ['cni.assign', 'MaxBlocksReached', 'limit', 101, /no address available/],
      ['cni.assign', 'RetriesExhausted', 'gave up', 11, /the datastore is busy or unreachable: gave up/],
      ['cni.assign', 'Unavailable', 'etcd down', 11, /busy or unreachable: etcd down/],
      [
        'cni.assign',
        'NodeNotFound',
        'Node node-1 does not exist',
        102,
        /IPAM allocation for .* failed: Node node-1 does not exist/,
      ],
      ['cni.assign', 'Internal', 'boom', 102, /failed: boom/],
      [
        'cni.assign',
        'BadRequest',
        'malformed CNI request: x',
        100,
        /tabby-node refused the request: malformed CNI request: x/,
      ],
      [
        'cni.endpoint.put',
        'Conflict',
        'changed',
        11,
        /writing WorkloadEndpoint .*: the datastore is busy or unreachable: changed/,
      ],
      [
        'cni.endpoint.put',
        'Invalid',
        'spec.mac bad',
        100,
        /writing WorkloadEndpoint .* failed: spec.mac bad/,
      ],
      ['cni.endpoint.put', 'Unsupported', 'no', 100, /tabby-node refused the request: no/],
    ];
    for (const [cmd, code, error, cniCode, re] of cases) {
      const f = await fake(except(cmd, () => ({ ok: false, code, error })));
      const w = world();
      assertError(await w.invoke(attachEnv('ADD'), on(f.path)), cniCode, re);
      assert.equal(w.sessions.opened, 0);
    }
    // DEL: each step is tried, the first error reported with the others.
    const f = await fake(
      except('cni.endpoint.delete', () => ({ ok: false, code: 'Unavailable', error: 'etcd down' })),
    );
    const w = world();
    const r = await w.invoke(attachEnv('DEL'), on(f.path));
    assertError(
      r,
      11,
      /deleting WorkloadEndpoint default\/node--1-k8s-nginx-eth0: the datastore is busy or unreachable: etcd down/,
    );
    assert.deepEqual(f.cmds, ['cni.hello', 'cni.endpoint.delete', 'cni.release']);
  });

  it('asks_for_the_address_CNI_ARGS_names', async () => {
    const f = await fake();
    const w = world();
    const args = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;IP=10.80.0.3';
    const r = await w.invoke(attachEnv('ADD', { CNI_ARGS: args }), on(f.path));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(f.requests[1]?.['assignment'], {
      kind: 'explicit',
      handle: `k8s-pod-network.${CID}`,
      node: 'node-1',
      attrs: { namespace: 'default', pod: 'nginx', timestamp: '2025-01-02T03:04:05.000Z' },
      ips: ['10.80.0.3'],
    });
    // In-process, the same request reaches the IPAM.
    const local = world();
    const added = await local.add(on(f.path, { node_socket: 'none' }), { CNI_ARGS: args });
    assert.deepEqual(added['ips'], [{ address: '10.80.0.3/32', gateway: '169.254.1.1', interface: 1 }]);
    assert.deepEqual([...local.ipam.handles.values()][0]?.req.ips, ['10.80.0.3']);
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_ARGS: 'IP=10.80.0.300' }), on(f.path)),
      4,
      /invalid CNI_ARGS: IP=10\.80\.0\.300 is not an IP address/,
    );
  });

  it('reads_the_namespace_labels_only_when_the_daemon_asks_and_sends_them', async () => {
    const d = memoryDaemon();
    const f = await fake((req) =>
      req['cmd'] === 'cni.assign' && req['namespace'] === undefined
        ? { ok: false, code: 'NamespaceLabelsNeeded', error: 'ask again', pools: ['prod (10.1.0.0/16)'] }
        : d(req),
    );
    const reads: string[] = [];
    const w = world();
    w.deps = {
      ...w.deps,
      readNamespace: (kubeconfig, ns) => {
        reads.push(`${kubeconfig} ${ns}`);
        return Promise.resolve({ tier: 'prod' });
      },
    };
    await w.add(on(f.path, { kubernetes: { kubeconfig: '/etc/kc' } }));
    assert.deepEqual(reads, ['/etc/kc default']);
    assert.deepEqual(f.cmds, ['cni.hello', 'cni.assign', 'cni.assign', 'cni.endpoint.put']);
    assert.deepEqual(f.requests[2]?.['namespace'], { labels: { tier: 'prod' } });
    // Without a kubeconfig, the pool that asks is named (7), as in-process.
    const r = await world().invoke(attachEnv('ADD', { CNI_CONTAINERID: 'c2' }), on(f.path));
    assertError(r, 7, /IPPool prod \(10\.1\.0\.0\/16\) selects namespaces/);
  });

  describe('STATUS', () => {
    it('is_the_daemons_readiness_with_its_reason', async () => {
      const f = await fake(
        memoryDaemon({ ready: { ready: false, reason: 'start-up: 1 of 3 BGP peers Established' } }),
      );
      assertError(
        await world().invoke(STATUS, on(f.path)),
        50,
        /^tabby-node is not ready: start-up: 1 of 3 BGP peers Established: asked at /,
      );
      // With a delegated IPAM the daemon is asked first, and the delegated plugin not at all.
      const w = world();
      w.deps = { ...w.deps, exec: () => () => Promise.reject(new Error('the delegated plugin was run')) };
      assertError(
        await w.invoke(STATUS, on(f.path, { ipam: { type: 'host-local' } })),
        50,
        /not ready: start-up/,
      );
      assert.equal(w.sessions.opened, 0);
    });

    it('then_the_pools_room', async () => {
      const f = await fake(memoryDaemon({ addresses: [] }));
      assertError(
        await world().invoke(STATUS, on(f.path)),
        50,
        /IPv4 pools exhausted: p \(10\.80\.0\.0\/29\): 8 of 8 in use/,
      );
      assertError(
        await world().invoke(
          STATUS,
          on(f.path, { ipam: { type: 'tabby-ipam', assign_ipv4: 'false', assign_ipv6: 'true' } }),
        ),
        50,
        /no enabled IPv6 pool/,
      );
      assertError(
        await world().invoke(
          STATUS,
          on(f.path, { ipam: { type: 'tabby-ipam', ipv4_pools: ['10.80.0.0/29'] } }),
        ),
        50,
        /IPv4 pools exhausted/,
      );
      assertError(
        await world().invoke(
          STATUS,
          on(f.path, { ipam: { type: 'tabby-ipam', ipv4_pools: ['10.81.0.0/29'] } }),
        ),
        50,
        /no enabled IPv4 pool/,
      );
      const room = await fake(memoryDaemon());
      const r = await world().invoke(STATUS, on(room.path));
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(room.cmds, ['cni.hello', 'cni.ready', 'cni.pools']);
    });

    it('says_the_datastore_is_unreachable_when_the_daemon_cannot_read_the_pools', async () => {
      const f = await fake(
        except('cni.pools', () => ({ ok: false, code: 'Unavailable', error: 'etcd down' })),
      );
      assertError(await world().invoke(STATUS, on(f.path)), 50, /^the datastore is unreachable: etcd down$/);
    });

    it('is_answered_from_the_datastore_when_no_daemon_runs_as_Calicos_plugin_does', async () => {
      const w = world();
      w.ipam.statusResult = { ok: false, code: 50, msg: 'IPv4 pools exhausted', details: 'x' };
      assertError(await w.invoke(STATUS, on(join(dir, 'absent.sock'))), 50, /^IPv4 pools exhausted/);
      assert.equal(w.sessions.opened, 1);
    });
  });

  describe('the executables wiring', () => {
    // A datastore that cannot be opened: success proves the work went to the daemon.
    const unusable = { type: 'yaml', dir: '/dev/null/tabby' };
    const io = (env: Record<string, string>, stdin: JsonObject) => {
      const out = { stdout: '', stderr: '' };
      return {
        out,
        io: {
          env,
          stdin: JSON.stringify(stdin),
          stdout: { write: (s: string) => (out.stdout += s) },
          stderr: { write: (s: string) => (out.stderr += s) },
        },
      };
    };

    it('tabby_runs_GC_through_the_daemon', async () => {
      const d = memoryDaemon();
      const f = await fake((req) =>
        req['cmd'] === 'cni.handles'
          ? { ok: true, handles: ['k8s-pod-network.old', 'k8s-pod-network.kept'] }
          : d(req),
      );
      const { io: x, out } = io(
        { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
        on(f.path, {
          datastore: unusable,
          'cni.dev/valid-attachments': [{ containerID: 'kept', ifname: 'eth0' }],
        }),
      );
      assert.equal(await mainTabby(x), 0, out.stdout);
      assert.deepEqual(f.cmds, ['cni.hello', 'cni.endpoint.list', 'cni.handles', 'cni.release']);
      assert.deepEqual(f.requests.at(-1), { cmd: 'cni.release', handle: 'k8s-pod-network.old' });
    });

    it('tabby_ipam_assigns_through_the_daemon_and_else_opens_the_datastore', async () => {
      const f = await fake();
      const ipamConf = on(f.path, { type: 'tabby-ipam', datastore: unusable });
      const add = io(attachEnv('ADD'), ipamConf);
      assert.equal(await mainTabbyIpam(add.io), 0, add.out.stdout);
      assert.deepEqual(JSON.parse(add.out.stdout), {
        cniVersion: '1.1.0',
        ips: [{ address: '10.80.0.1/32' }],
      });
      await f.stop();
      const fallback = io(attachEnv('ADD'), ipamConf);
      assert.equal(await mainTabbyIpam(fallback.io), 1);
      assert.match(fallback.out.stdout, /"code":11.*opening the yaml datastore/);
    });
  });
});
