import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FsmConfig, FsmInput, FsmOutput } from '../src/fsm/index.js';
import { SessionFsm, collisionWinner, negotiate } from '../src/fsm/index.js';
import type { Asn, Capability, NotificationMessage, OpenMessage } from '../src/wire/index.js';
import { IPV4_UNICAST, IPV6_UNICAST, afiSafiKey, asn, shutdownNotification } from '../src/wire/index.js';

const CAPS: Capability[] = [
  { kind: 'multiprotocol', afi: 1, safi: 1 },
  { kind: 'multiprotocol', afi: 2, safi: 1 },
  { kind: 'routeRefresh' },
  { kind: 'fourOctetAs', asn: asn(65001) },
  { kind: 'addPath', families: [{ afi: 1, safi: 1, mode: 'receive' }] },
];

function config(over: Partial<FsmConfig> = {}): FsmConfig {
  return {
    localAsn: asn(65001),
    localBgpIdentifier: '10.0.0.1',
    peerAsn: asn(65002),
    holdTime: 90,
    capabilities: CAPS,
    passive: false,
    connectRetryTime: 120,
    delayOpenTime: 0,
    openHoldTime: 240,
    idleHold: { initial: 5, max: 120 },
    random: () => 0.5,
    ...over,
  };
}

function peerOpen(over: Partial<OpenMessage> = {}, asnValue = 65002): OpenMessage {
  return {
    type: 'open',
    version: 4,
    myAutonomousSystem: asnValue > 0xffff ? 23456 : asnValue,
    holdTime: 30,
    bgpIdentifier: '10.0.0.2',
    capabilities: [
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'routeRefresh' },
      { kind: 'fourOctetAs', asn: asnValue as Asn },
      { kind: 'addPath', families: [{ afi: 1, safi: 1, mode: 'both' }] },
    ],
    ...over,
  };
}

const msg = (message: FsmInput & { type: 'message' }) => message;
const open = (o: OpenMessage = peerOpen()): FsmInput => msg({ type: 'message', message: o });
const keepalive: FsmInput = { type: 'message', message: { type: 'keepalive' } };
const update: FsmInput = {
  type: 'message',
  message: {
    type: 'update',
    withdrawnRoutes: { length: 0 } as never,
    pathAttributes: {},
    nlri: { length: 0 } as never,
  },
};

/** Output types only, for readable assertions. */
const kinds = (out: FsmOutput[]) =>
  out.map((o) => (o.type === 'armTimer' || o.type === 'cancelTimer' ? `${o.type}:${o.timer}` : o.type));
const sent = (out: FsmOutput[]) => out.flatMap((o) => (o.type === 'send' ? [o.message] : []));
const armed = (out: FsmOutput[], timer: string) =>
  out.flatMap((o) => (o.type === 'armTimer' && o.timer === timer ? [o.ms] : []));

function established(cfg: FsmConfig = config(), peer: OpenMessage = peerOpen()): SessionFsm {
  const f = new SessionFsm(cfg);
  f.handle({ type: 'manualStart' });
  f.handle({ type: 'tcpConnectionConfirmed' });
  f.handle(open(peer));
  f.handle(keepalive);
  assert.equal(f.state, 'established');
  return f;
}

function notificationSent(out: FsmOutput[]): NotificationMessage {
  const n = sent(out).find((m) => m.type === 'notification');
  assert.ok(n?.type === 'notification', `a NOTIFICATION is sent: ${kinds(out).join(', ')}`);
  return n;
}

describe('FSM: reaching Established (RFC 4271 §8.2.2)', () => {
  it('dials on ManualStart, sends OPEN on connect, KEEPALIVE on OPEN, and is Established on KEEPALIVE', () => {
    const f = new SessionFsm(config());
    let out = f.handle({ type: 'manualStart' });
    assert.equal(f.state, 'connect');
    assert.deepEqual(kinds(out), [
      'cancelTimer:idleHold',
      'armTimer:connectRetry',
      'connect',
      'stateChanged',
    ]);

    out = f.handle({ type: 'tcpConnectionConfirmed' });
    assert.equal(f.state, 'openSent');
    assert.equal(sent(out)[0]?.type, 'open');
    assert.deepEqual(armed(out, 'hold'), [240_000], 'the large hold value until OPEN');

    out = f.handle(open());
    assert.equal(f.state, 'openConfirm');
    assert.deepEqual(sent(out), [{ type: 'keepalive' }]);
    assert.deepEqual(armed(out, 'hold'), [30_000], 'hold = min(90, 30)');
    assert.deepEqual(
      armed(out, 'keepalive'),
      [8_750],
      'keepalive = hold / 3, jittered (random 0.5 -> 0.875)',
    );

    out = f.handle(keepalive);
    assert.equal(f.state, 'established');
    const est = out.find((o) => o.type === 'established');
    assert.ok(est?.type === 'established');
    assert.equal(est.session.holdTime, 30);
    assert.equal(est.session.keepaliveTime, 10);
    assert.deepEqual([...est.session.families], [IPV4_UNICAST]);
    assert.deepEqual([...est.session.addPathReceive], [IPV4_UNICAST]);
    assert.deepEqual([...est.session.addPathSend], []);
  });

  it('sends the OPEN with our ASN, hold time, identifier and capabilities, AS_TRANS for a 4-octet ASN', () => {
    const f = new SessionFsm(config({ localAsn: asn(4200000001) }));
    f.handle({ type: 'manualStart' });
    const o = sent(f.handle({ type: 'tcpConnectionConfirmed' }))[0];
    assert.ok(o?.type === 'open');
    assert.deepEqual(o, {
      type: 'open',
      version: 4,
      myAutonomousSystem: 23456,
      holdTime: 90,
      bgpIdentifier: '10.0.0.1',
      capabilities: CAPS,
    });
  });

  it('waits in Active without dialling when passive', () => {
    const f = new SessionFsm(config({ passive: true }));
    const out = f.handle({ type: 'manualStart' });
    assert.equal(f.state, 'active');
    assert.ok(!kinds(out).includes('connect'));
    f.handle({ type: 'tcpConnectionConfirmed' });
    assert.equal(f.state, 'openSent');
    // ConnectRetry expiry keeps a passive peer waiting, never dialling.
    const p = new SessionFsm(config({ passive: true }));
    p.handle({ type: 'manualStartPassive' });
    assert.ok(!kinds(p.handle({ type: 'timerExpired', timer: 'connectRetry' })).includes('connect'));
    assert.equal(p.state, 'active');
  });

  it('runs no keepalive or hold timer when the hold time negotiates to 0', () => {
    const f = new SessionFsm(config());
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionConfirmed' });
    const out = f.handle(open(peerOpen({ holdTime: 0 })));
    assert.deepEqual(armed(out, 'keepalive'), []);
    assert.deepEqual(armed(out, 'hold'), []);
    assert.ok(kinds(out).includes('cancelTimer:hold'));
    assert.equal(f.session?.holdTime, 0);
  });

  it('with DelayOpen, waits for the peer OPEN before sending its own, and sends it when the timer expires', () => {
    const f = new SessionFsm(config({ delayOpenTime: 5 }));
    f.handle({ type: 'manualStart' });
    let out = f.handle({ type: 'tcpConnectionConfirmed' });
    assert.equal(f.state, 'connect');
    assert.deepEqual(sent(out), []);
    assert.deepEqual(armed(out, 'delayOpen'), [5000]);
    out = f.handle(open());
    assert.deepEqual(
      sent(out).map((m) => m.type),
      ['open', 'keepalive'],
    );
    assert.equal(f.state, 'openConfirm');

    const g = new SessionFsm(config({ delayOpenTime: 5 }));
    g.handle({ type: 'manualStart' });
    g.handle({ type: 'tcpConnectionConfirmed' });
    out = g.handle({ type: 'timerExpired', timer: 'delayOpen' });
    assert.equal(sent(out)[0]?.type, 'open');
    assert.equal(g.state, 'openSent');
  });
});

describe('FSM: timers', () => {
  it('redials when ConnectRetry expires in Connect, with 0.75..1.0 jitter (RFC 4271 §10)', () => {
    const values = [0, 0.999];
    const f = new SessionFsm(config({ random: () => values.shift() ?? 0.5 }));
    const first = armed(f.handle({ type: 'manualStart' }), 'connectRetry');
    assert.deepEqual(first, [90_000]); // 120 s * 0.75
    const out = f.handle({ type: 'timerExpired', timer: 'connectRetry' });
    assert.deepEqual(kinds(out), ['disconnect', 'armTimer:connectRetry', 'cancelTimer:delayOpen', 'connect']);
    assert.ok((armed(out, 'connectRetry')[0] ?? 0) > 119_000);
    assert.equal(f.state, 'connect');
  });

  it('goes to Active after a failed dial and dials again on ConnectRetry', () => {
    const f = new SessionFsm(config());
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionFails', detail: 'ECONNREFUSED' });
    assert.equal(f.state, 'active');
    assert.equal(f.connectRetries, 1);
    assert.ok(kinds(f.handle({ type: 'timerExpired', timer: 'connectRetry' })).includes('connect'));
    assert.equal(f.state, 'connect');
  });

  it('sends a KEEPALIVE each time the keepalive timer expires, and rearms it', () => {
    const f = established();
    const out = f.handle({ type: 'timerExpired', timer: 'keepalive' });
    assert.deepEqual(sent(out), [{ type: 'keepalive' }]);
    assert.equal(armed(out, 'keepalive').length, 1);
    assert.equal(f.state, 'established');
  });

  it('restarts the hold timer on every message received, UPDATE and ROUTE-REFRESH too', () => {
    const f = established();
    assert.deepEqual(armed(f.handle(keepalive), 'hold'), [30_000]);
    const u = f.handle(update);
    assert.deepEqual(armed(u, 'hold'), [30_000]);
    assert.ok(kinds(u).includes('update'));
    const rr = f.handle({ type: 'message', message: { type: 'routeRefresh', afi: 1, safi: 1, subtype: 0 } });
    assert.deepEqual(armed(rr, 'hold'), [30_000]);
    assert.ok(kinds(rr).includes('routeRefresh'));
  });

  for (const state of ['openSent', 'openConfirm', 'established'] as const) {
    it(`sends Hold Timer Expired and goes Idle when the hold timer expires in ${state}`, () => {
      const f = new SessionFsm(config());
      f.handle({ type: 'manualStart' });
      f.handle({ type: 'tcpConnectionConfirmed' });
      if (state !== 'openSent') f.handle(open());
      if (state === 'established') f.handle(keepalive);
      assert.equal(f.state, state);
      const out = f.handle({ type: 'timerExpired', timer: 'hold' });
      const n = notificationSent(out);
      assert.deepEqual([n.code, n.subcode], [4, 0]);
      assert.equal(f.state, 'idle');
      assert.ok(kinds(out).includes('disconnect'));
      assert.equal(kinds(out).includes('sessionDown'), state === 'established');
    });
  }

  it('arms the RFC 9687 send hold timer when sending stalls, stops it on progress, and closes on expiry', () => {
    const f = established();
    assert.deepEqual(armed(f.handle({ type: 'sendStalled' }), 'sendHold'), [480_000], 'max(8 min, 2 x 30 s)');
    assert.deepEqual(kinds(f.handle({ type: 'sendResumed' })), ['cancelTimer:sendHold']);
    f.handle({ type: 'sendStalled' });
    const out = f.handle({ type: 'timerExpired', timer: 'sendHold' });
    const n = notificationSent(out);
    assert.deepEqual([n.code, n.subcode], [8, 0]);
    assert.equal(f.state, 'idle');
  });

  it('restarts automatically after a failure, doubling IdleHold up to its maximum, not after ManualStop', () => {
    const f = new SessionFsm(config({ idleHold: { initial: 5, max: 20 }, random: () => 0.999999 }));
    const waits: number[] = [];
    for (let k = 0; k < 4; k++) {
      f.handle(k === 0 ? { type: 'manualStart' } : { type: 'timerExpired', timer: 'idleHold' });
      f.handle({ type: 'tcpConnectionConfirmed' });
      const out = f.handle({ type: 'timerExpired', timer: 'hold' });
      waits.push(Math.round((armed(out, 'idleHold')[0] ?? 0) / 1000));
      assert.equal(f.state, 'idle');
    }
    assert.deepEqual(waits, [5, 10, 20, 20]);
    const g = established();
    const out = g.handle({ type: 'manualStop' });
    assert.deepEqual(armed(out, 'idleHold'), []);
  });
});

describe('FSM: errors and NOTIFICATIONs', () => {
  it('sends FSM Error 5/1 for an UPDATE in OpenSent, 5/2 in OpenConfirm, 5/3 for an OPEN in Established', () => {
    const a = new SessionFsm(config());
    a.handle({ type: 'manualStart' });
    a.handle({ type: 'tcpConnectionConfirmed' });
    assert.equal(notificationSent(a.handle(update)).subcode, 1);
    const b = new SessionFsm(config());
    b.handle({ type: 'manualStart' });
    b.handle({ type: 'tcpConnectionConfirmed' });
    b.handle(open());
    assert.equal(notificationSent(b.handle(update)).subcode, 2);
    const c = established();
    const n = notificationSent(c.handle(open()));
    assert.deepEqual([n.code, n.subcode], [5, 3]);
    assert.equal(c.state, 'idle');
  });

  it('rejects a wrong peer AS with Bad Peer AS (2/2)', () => {
    const f = new SessionFsm(config());
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionConfirmed' });
    const n = notificationSent(f.handle(open(peerOpen({}, 65099))));
    assert.deepEqual([n.code, n.subcode], [2, 2]);
    assert.equal(f.state, 'idle');
  });

  it('rejects an internal peer using our BGP identifier (2/3, RFC 6286 §2.2)', () => {
    const f = new SessionFsm(config({ peerAsn: asn(65001) }));
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionConfirmed' });
    const n = notificationSent(f.handle(open(peerOpen({ bgpIdentifier: '10.0.0.1' }, 65001))));
    assert.deepEqual([n.code, n.subcode], [2, 3]);
  });

  it('rejects a peer with no family in common (2/7, RFC 5492 §5), naming what we offer', () => {
    const f = new SessionFsm(config({ capabilities: [{ kind: 'multiprotocol', afi: 2, safi: 1 }] }));
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionConfirmed' });
    const n = notificationSent(f.handle(open()));
    assert.deepEqual([n.code, n.subcode], [2, 7]);
    assert.deepEqual([...n.data], [1, 4, 0, 2, 0, 1], 'the capability as encoded in an OPEN (RFC 5492 §3)');
  });

  it('sends the codec error of a malformed message and goes Idle', () => {
    const f = established();
    const error = {
      code: 3,
      subcode: 1,
      data: new Uint8Array(0),
      reason: 'bad',
      action: 'session-reset',
    } as never;
    const out = f.handle({ type: 'messageError', error });
    assert.deepEqual([notificationSent(out).code, notificationSent(out).subcode], [3, 1]);
    assert.ok(kinds(out).includes('sessionDown'));
  });

  it('closes without answering a NOTIFICATION, and does not damp a version error', () => {
    const f = established();
    const n: NotificationMessage = { type: 'notification', code: 6, subcode: 2, data: new Uint8Array(0) };
    const out = f.handle({ type: 'message', message: n });
    assert.deepEqual(sent(out), []);
    assert.equal(f.state, 'idle');
    const down = out.find((o) => o.type === 'sessionDown');
    assert.deepEqual(down, {
      type: 'sessionDown',
      reason: { kind: 'notificationReceived', notification: n },
    });
    const g = new SessionFsm(config());
    g.handle({ type: 'manualStart' });
    g.handle({ type: 'tcpConnectionConfirmed' });
    const v = g.handle({
      type: 'message',
      message: { type: 'notification', code: 2, subcode: 1, data: Uint8Array.of(0, 4) },
    });
    assert.deepEqual(armed(v, 'idleHold'), []);
  });

  it('sends Cease / Administrative Shutdown with an RFC 9003 message on ManualStop', () => {
    const f = established();
    const n = shutdownNotification('maintenance');
    const out = f.handle({ type: 'manualStop', notification: n });
    assert.deepEqual(notificationSent(out), n);
    assert.equal(f.state, 'idle');
    assert.equal(f.connectRetries, 0);
    const g = established();
    assert.deepEqual([notificationSent(g.handle({ type: 'manualStop' })).code, 2], [6, 2]);
  });

  it('on OpenCollisionDump sends Cease/7 in OpenSent and OpenConfirm, and ignores it in Established', () => {
    const a = new SessionFsm(config());
    a.handle({ type: 'manualStart' });
    a.handle({ type: 'tcpConnectionConfirmed' });
    a.handle(open());
    const n = notificationSent(a.handle({ type: 'openCollisionDump' }));
    assert.deepEqual([n.code, n.subcode], [6, 7]);
    assert.equal(a.state, 'idle');
    const b = established();
    assert.deepEqual(b.handle({ type: 'openCollisionDump' }), []);
    assert.equal(b.state, 'established');
  });

  it('goes back to Active when the connection fails in OpenSent', () => {
    const f = new SessionFsm(config());
    f.handle({ type: 'manualStart' });
    f.handle({ type: 'tcpConnectionConfirmed' });
    const out = f.handle({ type: 'tcpConnectionFails', detail: 'ECONNRESET' });
    assert.equal(f.state, 'active');
    assert.equal(armed(out, 'connectRetry').length, 1);
  });

  it('ignores starts when running and refuses connections in Idle', () => {
    const f = established();
    assert.deepEqual(f.handle({ type: 'manualStart' }), []);
    const g = new SessionFsm(config());
    assert.deepEqual(kinds(g.handle({ type: 'tcpConnectionConfirmed' })), ['disconnect']);
    assert.equal(g.state, 'idle');
  });
});

describe('negotiation', () => {
  it('agrees families, 4-octet AS, ADD-PATH directions, route refresh and extended message', () => {
    const local: OpenMessage = {
      type: 'open',
      version: 4,
      myAutonomousSystem: 65001,
      holdTime: 9,
      bgpIdentifier: '1.1.1.1',
      capabilities: [
        ...CAPS,
        { kind: 'extendedMessage' },
        { kind: 'addPath', families: [{ afi: 2, safi: 1, mode: 'send' }] },
        { kind: 'extendedNextHop', families: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
      ],
    };
    const remote = peerOpen({
      holdTime: 180,
      capabilities: [
        { kind: 'multiprotocol', afi: 1, safi: 1 },
        { kind: 'multiprotocol', afi: 2, safi: 1 },
        { kind: 'fourOctetAs', asn: asn(65002) },
        { kind: 'unknown', code: 128, value: new Uint8Array(0) },
        { kind: 'extendedMessage' },
        { kind: 'extendedNextHop', families: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
        {
          kind: 'addPath',
          families: [
            { afi: 1, safi: 1, mode: 'send' },
            { afi: 2, safi: 1, mode: 'receive' },
          ],
        },
        { kind: 'gracefulRestart', restarting: true, notification: true, restartTime: 120, families: [] },
      ],
    });
    const s = negotiate(local, remote, {
      localAsn: asn(65001),
      localBgpIdentifier: '1.1.1.1',
      peerAsn: asn(65002),
      holdTime: 9,
    });
    assert.ok('peerAsn' in s);
    assert.equal(s.holdTime, 9);
    assert.equal(s.keepaliveTime, 3);
    assert.deepEqual([...s.families].sort(), [IPV4_UNICAST, IPV6_UNICAST].sort());
    assert.deepEqual([...s.addPathReceive], [IPV4_UNICAST]);
    assert.deepEqual([...s.addPathSend], [IPV6_UNICAST]);
    assert.ok(s.as4 && s.extendedMessage && s.routeRefresh && !s.enhancedRouteRefresh && !s.internal);
    assert.deepEqual([...s.extendedNextHop], [afiSafiKey(1, 1)]);
    assert.equal(s.peerGracefulRestart?.restarting, true);
    assert.equal(s.receiveContext.addPath.has(IPV4_UNICAST), true);
    assert.equal(s.sendContext.addPath.has(IPV6_UNICAST), true);
  });

  it('treats a peer without capabilities as IPv4 unicast only, 2-octet AS (RFC 4760, RFC 6793)', () => {
    const s = negotiate(
      {
        type: 'open',
        version: 4,
        myAutonomousSystem: 65001,
        holdTime: 90,
        bgpIdentifier: '1.1.1.1',
        capabilities: CAPS,
      },
      {
        type: 'open',
        version: 4,
        myAutonomousSystem: 65002,
        holdTime: 90,
        bgpIdentifier: '2.2.2.2',
        capabilities: [],
      },
      { localAsn: asn(65001), localBgpIdentifier: '1.1.1.1', peerAsn: asn(65002), holdTime: 90 },
    );
    assert.ok('peerAsn' in s);
    assert.deepEqual([...s.families], [IPV4_UNICAST]);
    assert.equal(s.as4, false);
    assert.equal(s.receiveContext.as4, false);
  });
});

describe('collision resolution (RFC 4271 §6.8, RFC 6286 §2.3)', () => {
  it('keeps the connection initiated by the higher BGP identifier, then the larger AS', () => {
    assert.equal(collisionWinner({ id: '10.0.0.2', asn: asn(1) }, { id: '10.0.0.1', asn: asn(2) }), 'local');
    assert.equal(
      collisionWinner({ id: '9.255.255.255', asn: asn(1) }, { id: '10.0.0.1', asn: asn(2) }),
      'remote',
    );
    assert.equal(
      collisionWinner({ id: '10.0.0.1', asn: asn(65002) }, { id: '10.0.0.1', asn: asn(65001) }),
      'local',
    );
    assert.equal(
      collisionWinner({ id: '10.0.0.1', asn: asn(65001) }, { id: '10.0.0.1', asn: asn(65002) }),
      'remote',
    );
  });
});
