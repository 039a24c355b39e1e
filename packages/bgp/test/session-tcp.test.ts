// The session layer on real loopback TCP sockets: two speakers on 127.0.0.1 and
// 127.0.0.2 reach Established both ways, carry an UPDATE, and a stranger is refused
// before OPEN.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { PeerConfig } from '../src/session/index.js';
import { Listener, Peer, dialTcp, systemClock } from '../src/session/index.js';
import type { UpdateMessage } from '../src/wire/index.js';
import {
  PrefixList,
  asn,
  packAnnouncements,
  shutdownCommunication,
  shutdownNotification,
} from '../src/wire/index.js';
import { until } from './helpers.js';

function cfg(localAsn: number, peerAsn: number, id: string, passive: boolean): PeerConfig {
  return {
    localAsn: asn(localAsn),
    localBgpIdentifier: id,
    peerAsn: asn(peerAsn),
    holdTime: 9,
    capabilities: [
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'multiprotocol', afi: 2, safi: 1 },
      { kind: 'fourOctetAs', asn: asn(localAsn) },
    ],
    passive,
    connectRetryTime: 1,
    delayOpenTime: 0,
    openHoldTime: 240,
    idleHoldTime: 0.2,
    maxIdleHoldTime: 2,
    random: Math.random,
  };
}

describe('session layer over loopback TCP', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('reaches Established both ways, carries an UPDATE, refuses strangers, and shuts down with a reason', async () => {
    const updates: UpdateMessage[] = [];
    const notes: string[] = [];
    let portA = 0;
    let portB = 0;
    const A = new Peer(
      cfg(65001, 65002, '10.0.0.1', false),
      {
        clock: systemClock,
        dial: () => dialTcp({ host: '127.0.0.2', port: portB, localAddress: '127.0.0.1', timeoutMs: 1000 }),
      },
      {},
    );
    const B = new Peer(
      cfg(65002, 65001, '10.0.0.2', false),
      {
        clock: systemClock,
        dial: () => dialTcp({ host: '127.0.0.1', port: portA, localAddress: '127.0.0.2', timeoutMs: 1000 }),
      },
      {
        update: (u) => updates.push(u),
        message: (dir, _type, _bytes, m) => {
          if (dir === 'in' && m?.type === 'notification')
            notes.push(shutdownCommunication(m) ?? `${m.code}/${m.subcode}`);
        },
      },
    );
    const refused: string[] = [];
    const la = new Listener({
      host: '127.0.0.1',
      port: 0,
      route: (r) => (r === '127.0.0.2' ? (t) => A.acceptIncoming(t) : undefined),
      refused: (r) => refused.push(r),
    });
    const lb = new Listener({
      host: '127.0.0.2',
      port: 0,
      route: (r) => (r === '127.0.0.1' ? (t) => B.acceptIncoming(t) : undefined),
    });
    await la.listen();
    await lb.listen();
    cleanup.push(
      () => la.close(),
      () => lb.close(),
      () => A.stop(),
      () => B.stop(),
    );
    portA = la.port;
    portB = lb.port;
    A.start();
    B.start();
    await until(() => A.state === 'established' && B.state === 'established', 'both Established');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(A.connections.length, 1, 'one session after simultaneous starts');
    assert.equal(B.connections.length, 1);

    const [msg] = packAnnouncements(
      {
        attributes: {
          origin: 'igp',
          asPath: [{ type: 'sequence', asns: [asn(65001)] }],
          nextHop: '127.0.0.1',
        },
        prefixes: PrefixList.parse(1, ['10.65.0.0/26', '10.65.0.64/26']),
      },
      A.session!.sendContext,
    );
    A.send(msg!);
    await until(() => updates.length > 0, 'the UPDATE');
    assert.deepEqual(updates[0]?.nlri.toStrings(), ['10.65.0.0/26', '10.65.0.64/26']);

    // A stranger (127.0.0.3) is reset before any byte of BGP.
    const got: Buffer[] = [];
    const stranger = net.connect({ host: '127.0.0.1', port: portA, localAddress: '127.0.0.3' });
    stranger.on('data', (d) => got.push(d));
    stranger.on('error', () => {});
    await new Promise((r) => stranger.on('close', r));
    assert.deepEqual(got, []);
    await until(() => refused.includes('127.0.0.3'), 'the stranger refused');

    A.stop(shutdownNotification('maintenance window'));
    await until(() => notes.includes('maintenance window'), 'the shutdown text');
    await until(() => A.state === 'idle', 'A idle');
  });
});
