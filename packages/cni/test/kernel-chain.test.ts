// Tabby first in a conflist, the reference `portmap` plugin (Debian's
// containernetworking-plugins) after it, called as libcni calls a chain: ADD in order with
// each plugin's result as the next one's prevResult, CHECK with the final result, DEL in
// reverse order (dual-stack where the kernel allows). A TCP connection to the node's host port reaches a server in the pod.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AnyResource } from '@tabby/datastore';
import { openBackend } from '@tabby/datastore';
import type { JsonObject } from '../src/spec/result.js';
import type { PluginRun } from './kernel-support.js';
import {
  ipv6Available,
  kernelUnavailable,
  needKernel,
  NODE4,
  nodeNetns,
  runIn,
  runPlugin,
  TestNetns,
} from './kernel-support.js';

const CNI_BIN = '/usr/lib/cni';
const PORTMAP = join(CNI_BIN, 'portmap');
const NET = 'tcn-chain';
const HOST_PORT = 18080;
const POD_PORT = 8080;

function chainUnavailable(): string | undefined {
  if (!existsSync(PORTMAP))
    return `${PORTMAP} is missing (Debian: apt-get install containernetworking-plugins)`;
  try {
    execFileSync('iptables', ['--version'], { stdio: 'pipe' });
  } catch {
    return 'iptables is missing (portmap needs it; Debian: apt-get install iptables)';
  }
  return undefined;
}

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

/** Connects from inside `ns` to host:port and returns what the server sent. */
function fetchFrom(ns: TestNetns, host: string, port: number): string {
  const js =
    `const s=require('net').connect(${port},'${host}');let d='';s.setTimeout(2000,()=>{console.error('timeout');process.exit(2)});` +
    `s.on('data',c=>d+=c).on('end',()=>process.stdout.write(d)).on('error',e=>{console.error(e.message);process.exit(1)})`;
  return ns.exec(process.execPath, '-e', js);
}

describe('tabby chained before the reference portmap plugin', () => {
  const v6 = ipv6Available();
  const dir = mkdtempSync(join(tmpdir(), 'tcn-chain-datastore-'));
  let node: TestNetns | undefined;
  let pod: TestNetns | undefined;
  let server: ChildProcess | undefined;

  // The conflist, and each plugin's config as libcni derives it from the list.
  const list = {
    cniVersion: '1.0.0',
    name: NET,
    plugins: [
      {
        type: 'tabby',
        nodename: 'tcn-chain-node',
        datastore: { type: 'yaml', dir },
        ipam: { type: 'tabby-ipam', assign_ipv6: v6 ? 'true' : 'false' },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  const pluginConf = (i: number, prevResult?: JsonObject): JsonObject => ({
    cniVersion: list.cniVersion,
    name: list.name,
    ...list.plugins[i]!,
    ...(i === 1
      ? {
          runtimeConfig: {
            portMappings: [{ hostPort: HOST_PORT, containerPort: POD_PORT, protocol: 'tcp' }],
          },
        }
      : {}),
    ...(prevResult === undefined ? {} : { prevResult }),
  });
  const env = (command: string): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c-chain-1',
    CNI_NETNS: pod!.path,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=chain-pod',
    CNI_PATH: CNI_BIN,
  });
  const call = (i: number, command: string, prevResult?: JsonObject): Promise<PluginRun> =>
    i === 0
      ? runPlugin(node!, env(command), pluginConf(0, prevResult))
      : runIn(node!, [PORTMAP], env(command), pluginConf(1, prevResult));
  const ok = (r: PluginRun, what: string): void =>
    assert.equal(r.code, 0, `${what}: ${r.stdout} ${r.stderr}`);
  const nat = (): string => node!.exec('iptables', '-t', 'nat', '-S');

  before(async () => {
    if (kernelUnavailable() !== undefined || chainUnavailable() !== undefined) return;
    const b = await openBackend({ type: 'yaml', dir });
    try {
      await b.create(res('IPPool', 'tcn-chain-pool', { cidr: '10.68.0.0/24', blockSize: 26 }));
      if (v6) await b.create(res('IPPool', 'tcn-chain-pool6', { cidr: 'fd68::/120', blockSize: 122 }));
      await b.create(res('Node', 'tcn-chain-node', {}));
    } finally {
      await b.close();
    }
    node = nodeNetns(v6);
    pod = TestNetns.create('chainpod');
  });

  after(() => {
    server?.kill();
    pod?.destroy();
    node?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ADD_CHECK_and_DEL_through_the_chain_with_a_working_host_port', async (t) => {
    if (!needKernel(t, chainUnavailable)) return;
    // ADD, in list order: portmap gets tabby's result as prevResult and passes it on
    const r0 = await call(0, 'ADD');
    ok(r0, 'tabby ADD');
    const r1 = await call(1, 'ADD', r0.out);
    ok(r1, 'portmap ADD');
    const final = r1.out!;
    assert.deepEqual(final['ips'], r0.out!['ips'], 'portmap passes the addresses on');
    // (portmap 1.1 speaks CNI 1.0.0: interfaces lose the 1.1.0 field `mtu` on the way)
    const ifaces = (r: JsonObject) =>
      (r['interfaces'] as JsonObject[]).map(({ name, mac, sandbox }) => ({ name, mac, sandbox }));
    assert.deepEqual(ifaces(final), ifaces(r0.out!));
    const podIp = (final['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
    assert.match(nat(), new RegExp(`--to-destination ${podIp.replaceAll('.', '\\.')}:${POD_PORT}`));

    // a server in the pod, reached through the node's host port
    server = spawn('ip', [
      'netns',
      'exec',
      pod!.name,
      process.execPath,
      '-e',
      `require('net').createServer(s=>s.end('hello from the pod')).listen(${POD_PORT},()=>console.log('up'))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', () => resolve());
      server!.once('exit', (c) => reject(new Error(`the pod's server exited with ${c}`)));
    });
    assert.equal(fetchFrom(node!, podIp, POD_PORT), 'hello from the pod', 'direct to the pod');
    assert.equal(fetchFrom(node!, NODE4, HOST_PORT), 'hello from the pod', 'through the host port');

    // CHECK, in list order, each with the final result
    ok(await call(0, 'CHECK', final), 'tabby CHECK');
    // Debian's portmap 1.1.1 fails its own CHECK (it looks for its IPv4 rules in the IPv6
    // table: containernetworking/plugins#819), so only tabby's CHECK of the final result runs.

    // DEL, in reverse order
    ok(await call(1, 'DEL', final), 'portmap DEL');
    ok(await call(0, 'DEL', final), 'tabby DEL');
    assert.doesNotMatch(nat(), new RegExp(podIp.replaceAll('.', '\\.')), 'no DNAT rule left');
    assert.deepEqual(pod!.links(), ['lo']);
    const b = await openBackend({ type: 'yaml', dir });
    try {
      assert.deepEqual((await b.list('IPAMHandle')).items, [], 'address released');
    } finally {
      await b.close();
    }
  });
});
