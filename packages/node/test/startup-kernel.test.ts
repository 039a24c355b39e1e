// Address autodetection against the real kernel: a network namespace (tst-…) with veth
// pairs, addresses and routes; the host read over rtnetlink, can-reach answered by the
// kernel's route lookup; then runStartup there on the memory datastore.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Datastore, Ipam, MemoryBackend } from '@tabby/datastore';
import { RtnlClient } from '@tabby/netlink';
import { kernelUnavailable, needKernel, TestNetns } from '@tabby/netlink/testing';
import type { HostInterface, StartupSystem } from '../src/index.js';
import {
  autodetect,
  describeDetection,
  NetlinkHostNetwork,
  parseAutodetectionMethod,
  runStartup,
} from '../src/index.js';
import { RecordingLogger } from './support/startup.js';

describe('address autodetection against the kernel', () => {
  let ns: TestNetns | undefined;
  let client: RtnlClient | undefined;
  let host: NetlinkHostNetwork | undefined;

  before(() => {
    if (kernelUnavailable() !== undefined) return;
    ns = TestNetns.create('autodetect', 'tst');
    const ip = (...a: string[]) => ns!.ip(...a);
    // eth0 first, then ens9: ens9 has the higher index. Their peers are named like
    // interfaces Calico excludes (veth*, docker*), with addresses of their own.
    ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'veth-eth0');
    ip('link', 'add', 'ens9', 'type', 'veth', 'peer', 'name', 'docker9');
    for (const dev of ['lo', 'eth0', 'veth-eth0', 'ens9', 'docker9']) ip('link', 'set', dev, 'up');
    ip('addr', 'add', '10.10.0.5/24', 'dev', 'eth0');
    ip('addr', 'add', 'fd10::5/64', 'dev', 'eth0', 'nodad');
    ip('addr', 'add', '10.10.0.1/24', 'dev', 'veth-eth0', 'noprefixroute');
    ip('addr', 'add', '192.168.50.9/24', 'dev', 'ens9');
    ip('addr', 'add', '172.30.0.1/16', 'dev', 'docker9');
    ip('route', 'add', '203.0.113.0/24', 'via', '10.10.0.1', 'dev', 'eth0');
    ip('route', 'add', 'default', 'via', '192.168.50.1', 'dev', 'ens9');
    client = RtnlClient.open({ netns: ns.path });
    host = new NetlinkHostNetwork(client, (name, family) =>
      name === 'gw.example' && family === 4
        ? Promise.resolve('203.0.113.7')
        : Promise.reject(new Error(`ENOTFOUND ${name}`)),
    );
  });

  after(() => {
    client?.close();
    ns?.destroy();
  });

  async function detect(method: string, family: 4 | 6 = 4): Promise<string> {
    const m = parseAutodetectionMethod(method, family);
    if (typeof m === 'string') assert.fail(m);
    return describeDetection(
      await autodetect(m, family, {
        interfaces: await host!.interfaces(),
        host: host!,
        kubernetesAddresses: undefined,
      }),
    );
  }

  it('reads_every_interface_and_address_in_index_order', async (t) => {
    if (!needKernel(t)) return;
    const ifs: HostInterface[] = await host!.interfaces();
    assert.deepEqual(
      ifs.map((i) => i.name),
      ['lo', 'veth-eth0', 'eth0', 'docker9', 'ens9'],
    );
    const eth0 = ifs.find((i) => i.name === 'eth0')!;
    assert.deepEqual(
      eth0.addresses.filter((a) => !a.address.startsWith('fe80')),
      [
        { family: 4, address: '10.10.0.5', prefixLen: 24 },
        { family: 6, address: 'fd10::5', prefixLen: 64 },
      ],
    );
    assert.ok(ifs.every((i, n) => n === 0 || ifs[n - 1]!.index < i.index));
  });

  it('finds_addresses_with_every_interface_method', async (t) => {
    if (!needKernel(t)) return;
    // the highest index first, excluded names skipped
    assert.equal(await detect('first-found'), '192.168.50.9/24 on ens9');
    assert.equal(await detect('first-found', 6), 'fd10::5/64 on eth0');
    assert.equal(await detect('interface=eth0'), '10.10.0.5/24 on eth0');
    assert.equal(await detect('interface=docker.*'), '172.30.0.1/16 on docker9');
    assert.equal(await detect('skip-interface=ens.*'), '10.10.0.5/24 on eth0');
    assert.equal(await detect('cidr=10.10.0.0/16'), '10.10.0.5/24 on eth0');
  });

  it('asks_the_kernel_which_source_address_reaches_a_destination', async (t) => {
    if (!needKernel(t)) return;
    assert.equal(await detect('can-reach=203.0.113.7'), '10.10.0.5/24 on eth0');
    assert.equal(await detect('can-reach=198.51.100.1'), '192.168.50.9/24 on ens9');
    assert.equal(await detect('can-reach=gw.example'), '10.10.0.5/24 on eth0');
    assert.equal(await detect('can-reach=fd10::99', 6), 'fd10::5/64 on eth0');
    // no IPv6 default route here
    assert.match(
      await detect('can-reach=2001:db8::1', 6),
      /^cannot reach 2001:db8::1: RTM_GETROUTE 2001:db8::1: ENETUNREACH/,
    );
    assert.match(await detect('can-reach=nowhere.example'), /ENOTFOUND nowhere\.example/);
  });

  it('starts_a_node_with_the_addresses_the_kernel_shows', async (t) => {
    if (!needKernel(t)) return;
    const backend = new MemoryBackend();
    const files = new Map<string, string>();
    const system: StartupSystem = {
      readFile: (p) => files.get(p),
      writeFile: (p, text) => void files.set(p, text),
      hostname: () => 'kernel-node',
      ipv6Available: () => true,
    };
    const r = await runStartup({
      env: {
        IP_AUTODETECTION_METHOD: 'can-reach=203.0.113.7',
        IP6: 'autodetect',
        IP6_AUTODETECTION_METHOD: 'interface=eth0',
        CALICO_IPV4POOL_VXLAN: 'Always',
      },
      datastore: new Datastore(backend),
      ipam: new Ipam({ backend }),
      host: host!,
      system,
      logger: new RecordingLogger(),
    });
    assert.equal(r.nodeName, 'kernel-node');
    assert.equal(r.ipv4?.cidr, '10.10.0.5/24');
    assert.equal(r.ipv6?.cidr, 'fd10::5/64');
    // 192.168.0.0/16 holds ens9's address: Calico's fallback
    assert.equal(r.pools.created[0]?.spec.cidr, '172.16.0.0/16');
    assert.ok(r.tunnelAddresses?.ipv4VXLANTunnelAddr?.startsWith('172.16.'));
    // IP unset: no interfaces listed for IPv4; IP6 set: the IPv6 ones, Calico's exclusions applied
    assert.deepEqual(
      r.node?.spec.interfaces?.map((i) => i.name),
      ['ens9', 'eth0'],
    );
  });
});
