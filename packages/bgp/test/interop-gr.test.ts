// Graceful restart (RFC 4724) with BIRD, FRR and GoBGP, both ways.
//
// bgp-ts restarts, the daemon helps: a speaker with graceful restart announces three routes
// to the daemon (a plain eBGP router here), then "crashes": Speaker.stop(undefined,
// { keepRoutes: true }) closes its socket without a NOTIFICATION, which is what the daemon
// sees of a killed process (the kernel closes the socket). The daemon must keep the routes,
// stale, while we are down (its CLI; a second bgp-ts speaker behind it must not see a
// withdrawal), then take a new speaker with the R bit that announces two of them, and drop
// the third at our End-of-RIB.
//
// The daemon restarts, bgp-ts helps: the daemon (killed with SIGKILL, then started again with
// the R and F bits and one route fewer in its config) must not make us withdraw anything
// while it is down; the route it no longer has goes at its End-of-RIB, the others never.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Daemon, DaemonConfig } from '../harness/daemons.js';
import { startDaemon } from '../harness/daemons.js';
import { KINDS, Side, addr, daemonSkip, requireDaemon, sleep, until } from './interop-common.js';

const RESTART_TIME = 120;
/** How long a side stays down, past the moment the other noticed: a withdrawal would show. */
const DOWN_MS = 2000;

describe('graceful restart with BIRD, FRR and GoBGP', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  KINDS.forEach((kind, k) => {
    describe(kind, () => {
      const skip = daemonSkip(kind);

      it(
        'bgp-ts restarts: the daemon keeps our routes stale while we are down, passes no withdrawal on, and once we are back (R bit, End-of-RIB) drops only the route not re-announced',
        { skip },
        async () => {
          requireDaemon(kind);
          const base = 0x0600 + k * 16;
          const [r, o] = [base + 1, base + 2];
          const port = 17820 + k;
          const daemon = await startDaemon(kind, {
            asn: 64800,
            routerId: `10.80.0.${k + 1}`,
            address: addr(base),
            port,
            apiPort: port - 1000,
            role: 'client',
            holdTime: 9,
            gracefulRestart: { restartTime: RESTART_TIME },
            peers: [
              { address: addr(r), asn: 64801 },
              { address: addr(o), asn: 64802 },
            ],
          });
          cleanup.push(() => daemon.stop());
          const target = { address: addr(base), port, asn: 64800 };
          const kept = [`10.81.${k + 1}.0/24`, `fd00:81:${k + 1}::/64`];
          const dropped = `10.82.${k + 1}.0/24`;
          const gr = { gracefulRestart: { restartTime: RESTART_TIME } };
          const first = new Side(r, 64801, target, [...kept, dropped], gr);
          const observer = new Side(o, 64802, target, [`10.83.${k + 1}.0/24`]);
          cleanup.push(
            () => first.speaker.stop(),
            () => observer.speaker.stop(),
          );
          await first.speaker.start();
          await observer.speaker.start();
          const all = [...kept, dropped];
          await until(() => all.every((p) => observer.best.has(p)), 'our routes through the daemon');

          // The crash.
          await first.speaker.stop(undefined, { keepRoutes: true });
          await until(
            async () => (await daemon.sessions()).some((s) => s.address === addr(r) && !s.established),
            `${kind} notices the session is gone`,
          );
          const keptStale = async (what: string) => {
            for (const p of all) {
              const routes = (await daemon.routes(p)).filter((x) => x.from === addr(r));
              assert.equal(routes.length, 1, `${what}: ${p} kept: ${JSON.stringify(routes)}`);
              // FRR and GoBGP mark them; BIRD's route listing does not say (its protocol does).
              if (kind !== 'bird') assert.equal(routes[0]!.stale, true, `${what}: ${p} stale`);
            }
            if (kind === 'bird') {
              assert.match(await daemon.cli('show protocols all p1'), /Neighbor graceful restart active/);
            }
            assert.ok(
              all.every((p) => observer.best.has(p)),
              `${what}: the observer still has ${all.join(', ')}`,
            );
          };
          await keptStale('at once');
          await sleep(DOWN_MS);
          await keptStale(`after ${DOWN_MS} ms down`);

          // Back, with the R bit, announcing two of the three.
          const second = new Side(r, 64801, target, kept, gr, { restarting: true });
          cleanup.push(() => second.speaker.stop());
          await second.speaker.start();
          await until(
            async () =>
              (await daemon.routes(dropped)).length === 0 &&
              (await Promise.all(kept.map((p) => daemon.routes(p)))).every(
                (rs) => rs.length === 1 && rs[0]!.from === addr(r) && rs[0]!.stale !== true,
              ),
            `${kind} refreshes ${kept.join(', ')} and drops ${dropped} after our End-of-RIB`,
            // GoBGP turns the peer away for about 6 s after it went down.
            20000,
          );
          assert.ok(second.count('out update') > 0 && second.log.includes('established'));
          await until(() => !observer.best.has(dropped), `the observer loses ${dropped}`);
          const withdrawn = observer.log.filter((l) => l.startsWith('withdraw '));
          assert.deepEqual(withdrawn, [`withdraw ${dropped}`], 'the only withdrawal the observer saw');
        },
      );

      it(
        'the daemon restarts: bgp-ts keeps its routes stale while it is down and drops only the route it no longer has at its End-of-RIB',
        { skip },
        async () => {
          requireDaemon(kind);
          const base = 0x0700 + k * 16;
          const h = base + 1;
          const port = 17830 + k;
          const kept = [`10.91.${k + 1}.0/24`, `fd00:91:${k + 1}::/64`];
          const dropped = `10.92.${k + 1}.0/24`;
          const config: DaemonConfig = {
            asn: 64900,
            routerId: `10.90.0.${k + 1}`,
            address: addr(base),
            port,
            apiPort: port - 1000,
            role: 'client',
            holdTime: 9,
            gracefulRestart: { restartTime: RESTART_TIME },
            peers: [{ address: addr(h), asn: 64901 }],
            originate: [...kept, dropped],
            originateNextHop: { ipv4: `198.18.9.${k + 1}`, ipv6: `2001:db8:91::${k + 1}` },
          };
          const daemon = await startDaemon(kind, config);
          cleanup.push(() => daemon.stop());
          const helper = new Side(
            h,
            64901,
            { address: addr(base), port, asn: 64900 },
            [`10.93.${k + 1}.0/24`],
            {
              gracefulRestart: { restartTime: RESTART_TIME },
            },
          );
          cleanup.push(() => helper.speaker.stop());
          await helper.speaker.start();
          const all = [...kept, dropped];
          await until(() => all.every((p) => helper.best.has(p)), `${kind}'s routes`);

          // The crash: SIGKILL, no NOTIFICATION.
          await daemon.kill();
          await until(() => helper.speaker.status()[0]?.state !== 'established', 'we notice');
          await sleep(DOWN_MS);
          assert.ok(
            all.every((p) => helper.best.has(p)),
            `kept while ${kind} is down: ${[...helper.best.keys()].join(', ')}`,
          );
          assert.deepEqual(
            helper.log.filter((l) => l.startsWith('withdraw ')),
            [],
          );

          // Back with the R and F bits, without the third route.
          const again: Daemon = await startDaemon(kind, {
            ...config,
            dir: daemon.dir,
            restarting: true,
            originate: kept,
          });
          // Stopped after the helper (cleanup runs in reverse): a daemon going first would put
          // the helper into its Restart Time wait again, whose timer Speaker.stop() leaves
          // armed, holding the test process for minutes.
          cleanup.unshift(() => again.stop());
          await until(() => !helper.best.has(dropped), `${dropped} goes at ${kind}'s End-of-RIB`);
          const log = helper.log;
          const back = log.lastIndexOf('established');
          const gone = log.indexOf(`withdraw ${dropped}`);
          assert.ok(back > log.indexOf('established'), `the session came back: ${log.join(', ')}`);
          // The stale route lived until the End-of-RIB of the new session: its withdrawal is
          // the End-of-RIB's doing (the sweep), logged just before the End-of-RIB event.
          assert.ok(gone > back, `withdrawn after the session came back: ${log.join(', ')}`);
          assert.equal(log[gone + 1], 'eor ipv4-unicast', `withdrawn at the End-of-RIB: ${log.join(', ')}`);
          assert.deepEqual(
            log.filter((l) => l.startsWith('withdraw ')),
            [`withdraw ${dropped}`],
            'nothing else was ever withdrawn',
          );
          assert.ok(kept.every((p) => helper.best.has(p)));
        },
      );
    });
  });
});
