// bgp-ts as the route reflector of real daemons: one speaker, two BIRD (or FRR, or GoBGP)
// instances as its iBGP clients, each originating a route per family. Each daemon must
// learn the other's routes from us with ORIGINATOR_ID = the other's router ID, CLUSTER_LIST
// = [our cluster ID] and the next hop untouched, as its own CLI shows; and lose them when
// the other goes away.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Daemon } from '../harness/daemons.js';
import { startDaemon } from '../harness/daemons.js';
import { Speaker } from '../src/speaker/index.js';
import { asn } from '../src/wire/index.js';
import { KINDS, addr, daemonSkip, requireDaemon, until } from './interop-common.js';

const AS = 64600;

describe('bgp-ts as route reflector for BIRD, FRR and GoBGP', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  KINDS.forEach((kind, k) => {
    it(
      `${kind}: two ${kind} clients learn each other's routes in both families with ORIGINATOR_ID, CLUSTER_LIST and next hop, and lose them when one stops`,
      { skip: daemonSkip(kind) },
      async () => {
        requireDaemon(kind);
        const base = 0x0500 + k * 16;
        const us = addr(base + 8);
        const clusterId = `10.66.66.${k + 1}`;
        const clients = [1, 2].map((i) => ({
          i,
          address: addr(base + i),
          port: 17800 + k * 2 + (i - 1),
          routerId: `10.60.${k}.${i}`,
          v4: `10.6${i}.${k + 1}.0/24`,
          v6: `fd00:6${i}:${k + 1}::/64`,
          // Outside 127/8: FRR refuses loopback next hops as martians.
          nextHop: { ipv4: `198.18.6.${k * 16 + i}`, ipv6: `2001:db8:6${i}:${k + 1}::1` },
        }));
        const daemons: Daemon[] = [];
        for (const c of clients) {
          const d = await startDaemon(kind, {
            asn: AS,
            routerId: c.routerId,
            address: c.address,
            port: c.port,
            apiPort: c.port - 1000,
            role: 'client',
            holdTime: 9,
            peers: [{ address: us, asn: AS }],
            originate: [c.v4, c.v6],
            originateNextHop: c.nextHop,
          });
          cleanup.push(() => d.stop());
          daemons.push(d);
        }
        const reflector = new Speaker({
          routerId: `10.255.5.${k + 1}`,
          clusterId,
          localAsn: asn(AS),
          peers: clients.map((c) => ({
            name: `${kind}${c.i}`,
            address: c.address,
            port: c.port,
            localAddress: us,
            asn: asn(AS),
            reflectorClient: true,
            holdTime: 9,
            connectRetryTime: 1,
          })),
        });
        cleanup.push(() => reflector.stop());
        await reflector.start();

        // What each daemon's CLI shows for the other's prefixes.
        const seen = async (d: Daemon, prefix: string) =>
          (await d.routes(prefix)).filter((r) => r.from === us);
        for (const [d, other] of [
          [daemons[0]!, clients[1]!],
          [daemons[1]!, clients[0]!],
        ] as const) {
          for (const [prefix, nextHop] of [
            [other.v4, other.nextHop.ipv4],
            [other.v6, other.nextHop.ipv6],
          ] as const) {
            await until(
              async () => (await seen(d, prefix)).length > 0,
              `${prefix} reflected to ${d.address}`,
            );
            const routes = await seen(d, prefix);
            assert.equal(routes.length, 1, JSON.stringify(routes));
            const r = routes[0]!;
            assert.equal(r.originatorId, other.routerId, `${prefix} at ${d.address}: ORIGINATOR_ID`);
            assert.deepEqual(r.clusterList, [clusterId], `${prefix} at ${d.address}: CLUSTER_LIST`);
            assert.equal(r.nextHop, nextHop, `${prefix} at ${d.address}: next hop untouched`);
            assert.deepEqual(r.asPath, [], `${prefix} at ${d.address}: AS_PATH`);
          }
        }
        assert.deepEqual(
          reflector.status().map((s) => s.state),
          ['established', 'established'],
        );

        // The first client goes (Cease): we withdraw its routes from the second.
        await daemons[0]!.stop();
        const d2 = daemons[1]!;
        await until(
          async () =>
            (await seen(d2, clients[0]!.v4)).length === 0 && (await seen(d2, clients[0]!.v6)).length === 0,
          `withdrawal of ${clients[0]!.v4} and ${clients[0]!.v6} at ${d2.address}`,
        );
      },
    );
  });
});
