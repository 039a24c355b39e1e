import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NotificationMessage, RouteRefreshMessage } from '../src/wire/index.js';
import {
  CeaseSubcode,
  ErrorCode,
  NOTIFICATION_CATALOGUE,
  RouteRefreshSubcode,
  RouteRefreshSubtype,
  decodeFrame,
  describeNotification,
  encodeMessage,
  errorCodeName,
  errorSubcodeName,
  hardResetCause,
  shutdownCommunication,
  shutdownNotification,
  strongerAction,
} from '../src/wire/index.js';
import { frame, notificationOf } from './helpers.js';

describe('NOTIFICATION', () => {
  it('round-trips every code and subcode in the catalogue', () => {
    for (const [code, entry] of NOTIFICATION_CATALOGUE) {
      for (const subcode of entry.subcodes.keys()) {
        const n: NotificationMessage = { type: 'notification', code, subcode, data: Uint8Array.of(1, 2) };
        assert.deepEqual(decodeFrame(encodeMessage(n)), n);
      }
    }
  });

  it('names codes and subcodes as the IANA registry does', () => {
    assert.equal(errorCodeName(6), 'Cease');
    assert.equal(errorSubcodeName(6, 7), 'Connection Collision Resolution');
    assert.equal(errorSubcodeName(5, 2), 'Receive Unexpected Message in OpenConfirm State');
    assert.equal(errorCodeName(8), 'Send Hold Timer Expired');
    assert.equal(errorSubcodeName(3, 11), 'Malformed AS_PATH');
    assert.equal(errorCodeName(99), 'Unknown error code 99');
    assert.equal(errorSubcodeName(6, 99), 'Unknown subcode 99');
  });

  it('carries an RFC 9003 shutdown communication of up to 255 bytes of UTF-8', () => {
    const text = 'ünïcödé '.repeat(20).slice(0, 120);
    const n = shutdownNotification(text);
    assert.equal(n.subcode, CeaseSubcode.AdministrativeShutdown);
    const back = decodeFrame(encodeMessage(n));
    assert.equal(back.type === 'notification' && shutdownCommunication(back), text);
    assert.throws(() => shutdownNotification('x'.repeat(256)), /at most 255/);
    const reset = shutdownNotification('reset', CeaseSubcode.AdministrativeReset);
    assert.equal(shutdownCommunication(reset), 'reset');
  });

  it('shows no shutdown communication when its length or UTF-8 is bad, and does not throw', () => {
    const cease = (data: number[]): NotificationMessage => ({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: Uint8Array.from(data),
    });
    assert.equal(shutdownCommunication(cease([5, 0x61])), undefined);
    assert.equal(shutdownCommunication(cease([2, 0xc3, 0x28])), undefined);
    assert.equal(shutdownCommunication(cease([])), undefined);
    assert.equal(shutdownCommunication({ ...cease([1, 0x61]), subcode: 3 }), undefined);
  });

  it('unwraps the NOTIFICATION inside an RFC 8538 Hard Reset', () => {
    const n: NotificationMessage = { type: 'notification', code: 6, subcode: 9, data: Uint8Array.of(4, 0) };
    assert.deepEqual(hardResetCause(n), {
      type: 'notification',
      code: 4,
      subcode: 0,
      data: new Uint8Array(0),
    });
  });

  it('describes a NOTIFICATION in one line: names, numbers, Hard Reset cause, shutdown text', () => {
    assert.equal(
      describeNotification({ type: 'notification', code: 4, subcode: 0, data: new Uint8Array(0) }),
      'Hold Timer Expired / Unspecific (4/0)',
    );
    const drained = shutdownNotification('node "a" drained');
    assert.equal(
      describeNotification(drained),
      'Cease / Administrative Shutdown (6/2): "node \\"a\\" drained"',
    );
    const wrapped: NotificationMessage = {
      type: 'notification',
      code: 6,
      subcode: 9,
      data: Uint8Array.from([6, 2, ...drained.data]),
    };
    assert.equal(
      describeNotification(wrapped),
      'Cease / Hard Reset (6/9) of Cease / Administrative Shutdown (6/2): "node \\"a\\" drained"',
    );
  });

  it('orders RFC 7606 actions from attribute discard to session reset', () => {
    assert.equal(strongerAction('attribute-discard', 'treat-as-withdraw'), 'treat-as-withdraw');
    assert.equal(strongerAction('session-reset', 'treat-as-withdraw'), 'session-reset');
    assert.equal(strongerAction('afi-safi-disable', 'treat-as-withdraw'), 'afi-safi-disable');
  });
});

describe('ROUTE-REFRESH', () => {
  it('round-trips normal, BoRR and EoRR (RFC 7313)', () => {
    for (const subtype of Object.values(RouteRefreshSubtype)) {
      const m: RouteRefreshMessage = { type: 'routeRefresh', afi: 2, safi: 1, subtype };
      assert.deepEqual(decodeFrame(encodeMessage(m)), m);
    }
  });

  it('keeps ORF bytes of a normal refresh (RFC 5291) unparsed', () => {
    const m: RouteRefreshMessage = {
      type: 'routeRefresh',
      afi: 1,
      safi: 1,
      subtype: 0,
      orf: Uint8Array.of(1, 2, 3),
    };
    assert.deepEqual(decodeFrame(encodeMessage(m)), m);
  });

  it('rejects a BoRR of the wrong length with 7/1 carrying the whole message (RFC 7313 §5)', () => {
    const f = frame(5, [0, 1, 1, 1, 0]);
    const e = notificationOf(() => decodeFrame(f));
    assert.equal(e.code, ErrorCode.RouteRefreshMessage);
    assert.equal(e.subcode, RouteRefreshSubcode.InvalidMessageLength);
    assert.deepEqual(e.data, f);
  });

  it('decodes an unknown subtype for the session to ignore (RFC 7313 §5)', () => {
    const m = decodeFrame(frame(5, [0, 1, 7, 1]));
    assert.deepEqual(m, { type: 'routeRefresh', afi: 1, safi: 1, subtype: 7 });
  });
});
