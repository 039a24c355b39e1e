// Vectors from outside this project (test/vectors/external: ExaBGP, GoBGP, MetalLB, RFC
// constructions; test/vectors/captured: real BIRD / FRR / GoBGP sessions). Each one is
// framed split at every offset, decoded with its session context, checked against the
// values its source states, and mirrored: decode(encode(decode(bytes))) = decode(bytes).
// Known gaps are listed in test/vectors/known-failing.txt; a listed vector that starts
// passing fails the suite too, so the list stays true.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { BgpMessage, CodecContext, PrefixList, UpdateMessage } from '../src/wire/index.js';
import {
  BgpNotification,
  CapabilityCode,
  MessageFramer,
  decodeFrame,
  encodeMessage,
  formatCommunity,
  formatLargeCommunity,
  maxMessageLength,
  parseIpv6,
  parseIpv4,
  shutdownCommunication,
  toHex,
  UpdateSubcode,
} from '../src/wire/index.js';
import { VECTORS, contextFor, hex, loadJsonDir } from './helpers.js';

interface ExternalVector {
  name: string;
  family: string;
  context: { as4?: boolean; addPath?: string[] };
  hex: string;
  expect: Record<string, unknown>;
}

const KNOWN_FAILING = new Map(
  readFileSync(new URL('known-failing.txt', VECTORS), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => {
      const [name, ...why] = l.split(' | ');
      return [name!.trim(), why.join(' | ').trim()] as const;
    }),
);

function prefixStrings(p: PrefixList): string[] {
  return p.toStrings().map((s, i) => (p.pathIds === null ? s : `${p.pathIds[i]}:${s}`));
}

/** Addresses compare by value, so "::ffff:172.20.0.1" equals "::ffff:ac14:1". */
function sameAddress(a: string, b: string): boolean {
  if (a.includes(':') !== b.includes(':')) return false;
  if (!a.includes(':')) return parseIpv4(a) === parseIpv4(b);
  const x = parseIpv6(a);
  const y = parseIpv6(b);
  return x !== undefined && y !== undefined && toHex(x) === toHex(y);
}

const MANDATORY_NAMES: Record<number, string> = { 1: 'origin', 2: 'asPath', 3: 'nextHop' };

const CAP_CODES: Record<string, number> = {
  multiprotocol: CapabilityCode.Multiprotocol,
  routeRefresh: CapabilityCode.RouteRefresh,
  enhancedRouteRefresh: CapabilityCode.EnhancedRouteRefresh,
  fourOctetAs: CapabilityCode.FourOctetAs,
  gracefulRestart: CapabilityCode.GracefulRestart,
  addPath: CapabilityCode.AddPath,
  extendedMessage: CapabilityCode.ExtendedMessage,
  extendedNextHop: CapabilityCode.ExtendedNextHop,
  fqdn: CapabilityCode.Fqdn,
};

function checkUpdate(u: UpdateMessage, e: Record<string, unknown>): void {
  const a = u.pathAttributes;
  if (e['withdrawn'] !== undefined)
    assert.deepEqual(prefixStrings(u.withdrawnRoutes), e['withdrawn'], 'withdrawn');
  if (e['nlri'] !== undefined) assert.deepEqual(prefixStrings(u.nlri), e['nlri'], 'nlri');
  if (e['origin'] !== undefined) assert.equal(a.origin, e['origin'], 'origin');
  if (e['asPath'] !== undefined) assert.deepEqual(a.asPath, e['asPath'], 'asPath');
  if (e['nextHop'] !== undefined) assert.equal(a.nextHop, e['nextHop'], 'nextHop');
  if (e['multiExitDisc'] !== undefined) assert.equal(a.multiExitDisc, e['multiExitDisc'], 'multiExitDisc');
  if (e['localPref'] !== undefined) assert.equal(a.localPref, e['localPref'], 'localPref');
  if (e['atomicAggregate'] !== undefined)
    assert.equal(a.atomicAggregate, e['atomicAggregate'], 'atomicAggregate');
  if (e['aggregator'] !== undefined) assert.deepEqual(a.aggregator, e['aggregator'], 'aggregator');
  if (e['communities'] !== undefined) assert.deepEqual(a.communities?.map(formatCommunity), e['communities']);
  if (e['largeCommunities'] !== undefined) {
    assert.deepEqual(a.largeCommunities?.map(formatLargeCommunity), e['largeCommunities']);
  }
  if (e['extendedCommunities'] !== undefined) {
    assert.deepEqual(
      a.extendedCommunities?.map((c) => c.toString(16).padStart(16, '0')),
      e['extendedCommunities'],
      'extendedCommunities',
    );
  }
  if (e['originatorId'] !== undefined) assert.equal(a.originatorId, e['originatorId'], 'originatorId');
  if (e['clusterList'] !== undefined) assert.deepEqual(a.clusterList, e['clusterList'], 'clusterList');
  const reach = e['mpReach'] as
    { afi: number; safi: number; nextHop?: string[]; nlri?: string[] } | undefined;
  if (reach !== undefined) {
    const m = a.mpReachNlri;
    assert.ok(m !== undefined, 'mpReachNlri present');
    assert.equal(m.afi, reach.afi);
    assert.equal(m.safi, reach.safi);
    if (m.kind === 'prefixes') {
      if (reach.nlri !== undefined) assert.deepEqual(prefixStrings(m.nlri), reach.nlri, 'mpReach nlri');
      if (reach.nextHop !== undefined) {
        const got = m.linkLocalNextHop === undefined ? [m.nextHop] : [m.nextHop, m.linkLocalNextHop];
        assert.equal(got.length, reach.nextHop.length, 'next hop count');
        got.forEach((g, i) =>
          assert.ok(sameAddress(g, reach.nextHop![i]!), `next hop ${g} vs ${reach.nextHop![i]}`),
        );
      }
    }
  }
  const unreach = e['mpUnreach'] as { afi: number; safi: number; withdrawn?: string[] } | undefined;
  if (unreach !== undefined) {
    const m = a.mpUnreachNlri;
    assert.ok(m !== undefined, 'mpUnreachNlri present');
    assert.equal(m.afi, unreach.afi);
    assert.equal(m.safi, unreach.safi);
    if (m.kind === 'prefixes' && unreach.withdrawn !== undefined) {
      assert.deepEqual(prefixStrings(m.withdrawnRoutes), unreach.withdrawn, 'mpUnreach withdrawn');
    }
  }
}

function checkExpect(m: BgpMessage, e: Record<string, unknown>): void {
  assert.equal(m.type, e['type']);
  switch (m.type) {
    case 'update': {
      // Some upstream vectors are a lone attribute wrapped in an UPDATE, without the
      // well-known mandatory attributes. Our decoder rightly reports those as missing
      // (RFC 7606 §3 d); accept exactly that, for attributes upstream makes no claim about.
      const unexplained = (m.malformed?.errors ?? []).filter(
        (x) =>
          x.subcode !== UpdateSubcode.MissingWellKnownAttribute ||
          e[MANDATORY_NAMES[x.attributeType ?? 0] ?? ''] !== undefined,
      );
      assert.deepEqual(
        unexplained.map((x) => x.message),
        [],
        'unexpected RFC 7606 errors',
      );
      checkUpdate(m, e);
      break;
    }
    case 'open':
      if (e['myAutonomousSystem'] !== undefined) assert.equal(m.myAutonomousSystem, e['myAutonomousSystem']);
      if (e['holdTime'] !== undefined) assert.equal(m.holdTime, e['holdTime']);
      if (e['bgpIdentifier'] !== undefined) assert.equal(m.bgpIdentifier, e['bgpIdentifier']);
      if (e['capabilities'] !== undefined) {
        const codes = m.capabilities.map((c) => (c.kind === 'unknown' ? c.code : CAP_CODES[c.kind]));
        assert.deepEqual([...new Set(codes)].sort(), [...new Set(e['capabilities'] as number[])].sort());
      }
      break;
    case 'notification':
      if (e['code'] !== undefined) assert.equal(m.code, e['code']);
      if (e['subcode'] !== undefined) assert.equal(m.subcode, e['subcode']);
      if (e['data'] !== undefined) assert.equal(toHex(m.data), e['data']);
      if (e['shutdownCommunication'] !== undefined)
        assert.equal(shutdownCommunication(m), e['shutdownCommunication']);
      break;
    case 'routeRefresh':
      if (e['afi'] !== undefined) assert.equal(m.afi, e['afi']);
      if (e['safi'] !== undefined) assert.equal(m.safi, e['safi']);
      if (e['subtype'] !== undefined) assert.equal(m.subtype, e['subtype']);
      break;
    case 'keepalive':
      break;
  }
}

/** Frames `bytes` split at every offset; each split yields the same single frame. */
function frameEverySplit(bytes: Uint8Array, ctx: CodecContext): void {
  for (let cut = 0; cut <= bytes.length; cut++) {
    const out: string[] = [];
    const f = new MessageFramer(maxMessageLength(ctx));
    f.push(bytes.subarray(0, cut), (_t, fr) => out.push(toHex(fr)));
    f.push(bytes.subarray(cut), (_t, fr) => out.push(toHex(fr)));
    assert.deepEqual(out, [toHex(bytes)], `split at ${cut}`);
  }
}

/** decode(encode(m)) = m, and returns whether the bytes came back identical. */
function mirror(m: BgpMessage, bytes: Uint8Array, ctx: CodecContext): boolean {
  const again = encodeMessage(m, ctx);
  assert.deepEqual(decodeFrame(again, ctx), m, 'decode(encode(decode(bytes)))');
  return toHex(again) === toHex(bytes);
}

function runVector(v: ExternalVector): { exact: boolean } {
  const ctx = contextFor(v.context);
  const bytes = hex(v.hex);
  frameEverySplit(bytes, ctx);
  const malformed = v.expect['malformed'] as { rfc7606?: string; attribute?: number } | undefined;
  let m: BgpMessage;
  try {
    m = decodeFrame(bytes, ctx);
  } catch (e) {
    assert.ok(e instanceof BgpNotification, `only BgpNotification may be thrown: ${String(e)}`);
    // We do not implement AFI/SAFI disable (RFC 7606 §7.11 allows session reset instead).
    if (malformed?.rfc7606 === 'session-reset' || malformed?.rfc7606 === 'afi-safi-disable')
      return { exact: false };
    throw e;
  }
  if (malformed !== undefined) {
    assert.equal(m.type, 'update');
    const u = m;
    assert.ok(u.malformed !== undefined, 'the vector is malformed, so the decode must say so');
    if (malformed.rfc7606 !== undefined) assert.equal(u.malformed.action, malformed.rfc7606);
    if (malformed.attribute !== undefined) {
      assert.ok(u.malformed.errors.some((e) => e.attributeType === malformed.attribute));
    }
    return { exact: false };
  }
  checkExpect(m, v.expect);
  return { exact: mirror(m, bytes, ctx) };
}

describe('external vectors', () => {
  const files = loadJsonDir<{ source: string; vectors?: ExternalVector[] }>('external');
  it('are present', () => assert.ok(files.length >= 4, 'test/vectors/external holds the published sets'));
  const seenKnown = new Set<string>();
  for (const { file, data } of files) {
    if (data.vectors === undefined || data.vectors.length === 0) continue;
    describe(file, () => {
      let exact = 0;
      for (const v of data.vectors!) {
        const key = `${file} :: ${v.name}`;
        const known = KNOWN_FAILING.get(key);
        if (known !== undefined) seenKnown.add(key);
        it(v.name, () => {
          if (known === undefined) {
            if (runVector(v).exact) exact++;
            return;
          }
          assert.throws(
            () => runVector(v),
            Error,
            `listed as known-failing (${known}) but passes: remove it`,
          );
        });
      }
      it('mirrors byte for byte where the source encodes canonically', (t) => {
        t.diagnostic(`${exact} of ${data.vectors!.length} re-encode to identical bytes`);
      });
    });
  }
  it('known-failing.txt names only vectors that exist', () => {
    for (const k of KNOWN_FAILING.keys()) assert.ok(seenKnown.has(k), `stale entry: ${k}`);
  });
});
