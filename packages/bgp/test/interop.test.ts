// Interop with real peers from Debian's packages, on loopback: BIRD 2, FRR bgpd and GoBGP,
// each as a route server and as a route reflector between two bgp-ts speakers. Routes
// cross in both families with communities and large communities intact; a frozen daemon
// (SIGSTOP) is caught by our hold timer; route refresh works both ways; a drained speaker's
// Cease/2 text reaches the daemon; TCP-MD5 through the speaker against BIRD. A daemon that
// is not installed skips with the reason, except under CI=true, where .ci/run installs them
// and a missing one fails. More in interop-ipv6, interop-reflector and interop-gr.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { startDaemon } from '../harness/daemons.js';
import type { Asn } from '../src/wire/index.js';
import { shutdownNotification } from '../src/wire/index.js';
import { KINDS, Side, addr, daemonSkip, requireDaemon, until } from './interop-common.js';

describe('interop with BIRD, FRR and GoBGP', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  KINDS.forEach((kind, k) => {
    describe(kind, () => {
      const skip = daemonSkip(kind);

      it(
        'as a route server: routes cross both ways in both families, communities intact; a frozen daemon is caught by the hold timer',
        { skip },
        async () => {
          requireDaemon(kind);
          const base = 0x0100 + k * 16;
          const [a, b] = [base + 1, base + 2];
          const port = 17900 + k;
          const daemon = await startDaemon(kind, {
            asn: 65100,
            routerId: `10.100.0.${k + 1}`,
            address: addr(base),
            port,
            apiPort: port - 1000, // GoBGP's gRPC port: clear of 18000-18999
            role: 'route-server',
            holdTime: 9,
            peers: [
              { address: addr(a), asn: 65201 },
              { address: addr(b), asn: 65202 },
            ],
          });
          cleanup.push(() => daemon.stop());
          const target = { address: addr(base), port, asn: 65100 };
          const s1 = new Side(a, 65201, target, ['10.201.0.0/24', 'fd00:201::/64']);
          const s2 = new Side(b, 65202, target, ['10.202.0.0/24', 'fd00:202::/64']);
          cleanup.push(
            () => s1.speaker.stop(),
            () => s2.speaker.stop(),
          );
          await s1.speaker.start();
          await s2.speaker.start();
          await until(
            () =>
              s2.best.has('10.201.0.0/24') &&
              s1.best.has('10.202.0.0/24') &&
              s2.best.has('fd00:201::/64') &&
              s1.best.has('fd00:202::/64'),
            'routes through the route server',
          );
          const r = s2.best.get('10.201.0.0/24')!.best.attributes;
          // A route server passes the path on without its own AS (RFC 7947 §2.2).
          assert.deepEqual(
            r.asPath?.flatMap((seg) => [...seg.asns]),
            [65201] as Asn[],
          );
          assert.deepEqual(r.communities, [((65201 << 16) | 7) >>> 0]);
          assert.deepEqual(r.largeCommunities, [
            { globalAdministrator: 65201, localData1: 1, localData2: 2 },
          ]);
          // RFC 7947 §2.2.2: a route server leaves NEXT_HOP alone. FRR 8.4 as route server
          // (route-server-client) rewrites it to its own address in this configuration: an FRR
          // quirk, not ours, so the next hop is checked for BIRD and GoBGP only.
          if (kind !== 'frr') assert.equal(r.nextHop, `192.0.2.${a & 255}`, 'next hop untouched');
          const six = s2.best.get('fd00:201::/64')!.best.attributes.mpReachNlri;
          assert.ok(six?.kind === 'prefixes');
          const sessions = await daemon.sessions();
          assert.equal(sessions.filter((s) => s.established).length, 2, JSON.stringify(sessions));

          // Freeze the daemon: our hold timer (9 s) notices and says so with Hold Timer Expired.
          process.kill(daemon.pid, 'SIGSTOP');
          try {
            await until(() => s1.speaker.status()[0]?.state !== 'established', 'hold timer expiry', 14000);
            assert.match(
              s1.speaker.status()[0]?.lastError ?? '',
              /^sent Hold Timer Expired \/ Unspecific \(4\/0\)/,
            );
          } finally {
            process.kill(daemon.pid, 'SIGCONT');
          }
          // (Whether the session comes back at once is the daemon's choice: BIRD waits out its
          // error wait time before it takes the peer again.)
        },
      );

      it(
        "as a route reflector: bgp-ts clients get each other's routes in both families with ORIGINATOR_ID and CLUSTER_LIST; route refresh both ways; a drained client's Cease/2 text",
        { skip },
        async () => {
          requireDaemon(kind);
          const base = 0x0200 + k * 16;
          const [a, b] = [base + 1, base + 2];
          const port = 17950 + k;
          const daemon = await startDaemon(kind, {
            asn: 65300,
            routerId: `10.30.0.${k + 1}`,
            clusterId: `10.30.0.${k + 1}`,
            address: addr(base),
            port,
            apiPort: port - 1000,
            role: 'route-reflector',
            holdTime: 9,
            peers: [
              { address: addr(a), asn: 65300 },
              { address: addr(b), asn: 65300 },
            ],
          });
          cleanup.push(() => daemon.stop());
          const target = { address: addr(base), port, asn: 65300 };
          const s1 = new Side(a, 65300, target, ['10.31.0.0/26', 'fd00:31::/64']);
          const s2 = new Side(b, 65300, target, ['10.32.0.0/26', 'fd00:32::/64']);
          cleanup.push(
            () => s1.speaker.stop(),
            () => s2.speaker.stop(),
          );
          await s1.speaker.start();
          await s2.speaker.start();
          await until(
            () =>
              s2.best.has('10.31.0.0/26') &&
              s1.best.has('10.32.0.0/26') &&
              s2.best.has('fd00:31::/64') &&
              s1.best.has('fd00:32::/64'),
            'reflected routes in both families',
          );
          const r = s2.best.get('10.31.0.0/26')!.best.attributes;
          assert.equal(r.originatorId, `10.255.${a >> 8}.${a & 255}`);
          assert.deepEqual(r.clusterList, [`10.30.0.${k + 1}`]);
          assert.equal(r.nextHop, `192.0.2.${a & 255}`);
          assert.deepEqual(r.communities, [((65300 << 16) | 7) >>> 0]);
          // The same for IPv6 (MP_REACH_NLRI over the IPv4 session): next hop kept.
          const r6 = s2.best.get('fd00:31::/64')!.best.attributes;
          assert.equal(r6.originatorId, `10.255.${a >> 8}.${a & 255}`);
          assert.deepEqual(r6.clusterList, [`10.30.0.${k + 1}`]);
          assert.ok(r6.mpReachNlri?.kind === 'prefixes');
          assert.equal(r6.mpReachNlri.nextHop, `fd00::${a.toString(16)}`);
          assert.deepEqual(r6.largeCommunities, [
            { globalAdministrator: 65300, localData1: 1, localData2: 2 },
          ]);

          // Route refresh (RFC 2918, RFC 7313), both ways. We ask; the daemon sends its routes
          // again. FRR 8.4 counts our request (routeRefreshRecv) but sends nothing back, as route
          // server and as reflector, within 10 s: left out here, noted in docs/bgp-speaker.md.
          if (kind !== 'frr') {
            const before = s2.count('in update');
            assert.equal(s2.speaker.refresh('daemon', 'ipv4-unicast'), true);
            await until(() => s2.count('in update') > before, `${kind} answers our ROUTE-REFRESH`);
          }
          // The daemon asks (its soft reset inbound); we answer with BoRR, our routes, EoRR.
          // GoBGP keeps every received path and re-applies policy without asking.
          if (kind !== 'gobgp') {
            const [rrIn, updOut] = [s1.count('in routeRefresh/0'), s1.count('out update')];
            await daemon.cli(kind === 'bird' ? 'reload in p1' : `clear bgp ${addr(a)} soft in`);
            await until(
              () => s1.count('in routeRefresh/0') > rrIn && s1.count('out update') > updOut,
              `${kind} asks for a refresh and gets our routes again`,
            );
            await until(() => s1.count('out routeRefresh') >= 2, 'BoRR and EoRR sent');
          }

          // Drain one client: the daemon logs our Cease / Administrative Shutdown with its text
          // (RFC 9003) and withdraws the client's route from the other.
          await s1.speaker.stop(shutdownNotification('interop: node-a drained'));
          await until(() => !s2.best.has('10.31.0.0/26'), 'withdrawal after the drain');
          await until(() => {
            const log = readFileSync(daemon.logFile, 'utf8');
            return /administrative shutdown/i.test(log) && log.includes('interop: node-a drained');
          }, `Cease/2 with its text in ${daemon.logFile}`);
        },
      );

      if (kind === 'bird')
        it(
          'TCP-MD5 (RFC 2385) through the speaker: the right key peers, a wrong key never connects',
          { skip },
          async () => {
            requireDaemon(kind);
            const base = 0x0400;
            const [a, b] = [base + 1, base + 2];
            const key = 'tabby-md5-key';
            const daemon = await startDaemon(kind, {
              asn: 65500,
              routerId: '10.50.0.1',
              address: addr(base),
              port: 17990,
              role: 'route-server',
              holdTime: 9,
              peers: [
                { address: addr(a), asn: 65501, password: key },
                { address: addr(b), asn: 65502, password: key },
              ],
            });
            cleanup.push(() => daemon.stop());
            const target = { address: addr(base), port: 17990, asn: 65500 };
            const good = new Side(a, 65501, target, ['10.51.0.0/24'], { password: key });
            const bad = new Side(b, 65502, target, ['10.52.0.0/24'], { password: 'not-the-key' });
            cleanup.push(
              () => good.speaker.stop(),
              () => bad.speaker.stop(),
            );
            await good.speaker.start();
            await bad.speaker.start();
            await until(
              // birdc exits 8 ("Network not found") until the route is there.
              async () =>
                (await daemon.cli('show route 10.51.0.0/24').catch(() => '')).includes('10.51.0.0/24'),
              'the route over the keyed session in BIRD',
            );
            assert.equal(good.speaker.status()[0]?.state, 'established');
            // The wrong key: BIRD's kernel drops the SYNs, so no session in 3 s of retries.
            await new Promise((r) => setTimeout(r, 3000));
            assert.notEqual(bad.speaker.status()[0]?.state, 'established');
            const seen = (await daemon.sessions()).find((s) => s.address === addr(b));
            assert.equal(seen?.established, false, JSON.stringify(seen));
          },
        );
    });
  });
});
