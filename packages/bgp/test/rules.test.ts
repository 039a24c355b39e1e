import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerRole, RouteOrigin } from '../src/speaker/index.js';
import { exportRoute, importRoute } from '../src/speaker/index.js';
import type { Asn, PathAttributes } from '../src/wire/index.js';
import { PrefixList, asn } from '../src/wire/index.js';

const me = { routerId: '10.0.0.1', clusterId: '10.0.0.1' };
function role(over: Partial<PeerRole> = {}): PeerRole {
  return {
    localAsn: asn(64512),
    peerAsn: asn(64512),
    localAddress: '192.0.2.1',
    nextHopIpv4: '192.0.2.1',
    reflectorClient: false,
    routeServerClient: false,
    nextHop: 'auto',
    allowAsIn: 0,
    ...over,
  };
}
const ebgp = (over: Partial<PeerRole> = {}) => role({ peerAsn: asn(65001), ...over });
const seq = (...a: number[]) => [{ type: 'sequence' as const, asns: a as Asn[] }];
const A: PathAttributes = {
  origin: 'igp',
  asPath: seq(65001, 65002),
  nextHop: '198.51.100.7',
  multiExitDisc: 50,
};
const from = (r: PeerRole, id: number, routerId = `10.0.0.${id}`): RouteOrigin => ({
  kind: 'peer',
  role: r,
  routerId,
  id,
});
const to = (r: PeerRole, id: number) => ({ ...r, id });

describe('import rules', () => {
  it('drops AS loops unless allowas-in permits them', () => {
    const looped: PathAttributes = { ...A, asPath: seq(65001, 64512) };
    assert.equal(importRoute(looped, ebgp(), me).accept, false);
    assert.equal(importRoute(looped, ebgp({ allowAsIn: 1 }), me).accept, true);
  });
  it('drops a reflected route carrying our router ID or cluster ID (RFC 4456 §8)', () => {
    assert.equal(importRoute({ ...A, asPath: [], originatorId: '10.0.0.1' }, role(), me).accept, false);
    assert.equal(
      importRoute({ ...A, asPath: [], clusterList: ['9.9.9.9', '10.0.0.1'] }, role(), me).accept,
      false,
    );
    assert.equal(importRoute({ ...A, asPath: [], clusterList: ['9.9.9.9'] }, role(), me).accept, true);
  });
  it('checks the first AS of eBGP routes and strips LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST', () => {
    assert.equal(importRoute({ ...A, asPath: seq(65099) }, ebgp({ enforceFirstAs: true }), me).accept, false);
    assert.equal(
      importRoute({ ...A, asPath: seq(65099) }, ebgp(), me).accept,
      true,
      'off by default: route servers do not prepend',
    );
    const r = importRoute(
      { ...A, localPref: 500, originatorId: '1.1.1.1', clusterList: ['2.2.2.2'] },
      ebgp(),
      me,
    );
    assert.ok(r.accept);
    assert.deepEqual(r.attributes, A);
  });
});

describe('export rules', () => {
  const ibgpA = role();
  const ibgpB = role({ localAddress: '192.0.2.1' });
  const clientA = role({ reflectorClient: true });
  const clientB = role({ reflectorClient: true });

  it('never sends a route back to its peer', () => {
    assert.equal(exportRoute(A, from(ebgp(), 1), to(ebgp(), 1), me), undefined);
  });

  it('does not pass iBGP routes to iBGP peers, unless reflecting (RFC 4456 §6)', () => {
    assert.equal(exportRoute(A, from(ibgpA, 1), to(ibgpB, 2), me), undefined, 'non-client to non-client');
    assert.ok(exportRoute(A, from(ibgpA, 1), to(clientB, 2), me), 'non-client to client');
    assert.ok(exportRoute(A, from(clientA, 1), to(ibgpB, 2), me), 'client to non-client');
    assert.ok(exportRoute(A, from(clientA, 1), to(clientB, 2), me), 'client to client');
  });

  it('sets ORIGINATOR_ID and prepends the cluster ID when reflecting, and keeps the next hop', () => {
    const out = exportRoute({ ...A, localPref: 120 }, from(clientA, 1, '10.0.0.7'), to(clientB, 2), me)!;
    assert.equal(out.originatorId, '10.0.0.7');
    assert.deepEqual(out.clusterList, ['10.0.0.1']);
    assert.equal(out.nextHop, '198.51.100.7');
    assert.equal(out.localPref, 120);
    const again = exportRoute(
      { ...A, originatorId: '10.0.0.99', clusterList: ['10.9.9.9'] },
      from(clientA, 1),
      to(clientB, 2),
      me,
    )!;
    assert.equal(again.originatorId, '10.0.0.99', 'an existing ORIGINATOR_ID is kept');
    assert.deepEqual(again.clusterList, ['10.0.0.1', '10.9.9.9']);
  });

  it('to eBGP: prepends our AS, next hop self, no LOCAL_PREF, no foreign MED, no RR attributes', () => {
    const out = exportRoute(
      { ...A, localPref: 300, originatorId: '1.1.1.1', clusterList: ['2.2.2.2'] },
      from(ebgp(), 1),
      to(ebgp({ peerAsn: asn(65100) }), 2),
      me,
    )!;
    assert.deepEqual(out.asPath, seq(64512, 65001, 65002));
    assert.equal(out.nextHop, '192.0.2.1');
    assert.equal(out.localPref, undefined);
    assert.equal(out.multiExitDisc, undefined, 'RFC 4271 §5.1.4');
    assert.equal(out.originatorId, undefined);
    assert.equal(out.clusterList, undefined);
    const keep = exportRoute(A, from(ebgp(), 1), to(ebgp({ peerAsn: asn(65100), nextHop: 'keep' }), 2), me)!;
    assert.equal(keep.nextHop, '198.51.100.7');
    const lasn = exportRoute(
      A,
      from(ebgp(), 1),
      to(ebgp({ peerAsn: asn(65100), localAsn: asn(4200000001) }), 2),
      me,
    )!;
    assert.deepEqual(lasn.asPath, seq(4200000001, 65001, 65002), 'local AS per peer');
  });

  it('to iBGP: LOCAL_PREF 100 by default, next hop kept unless self; local routes get our next hop', () => {
    const out = exportRoute(A, from(ebgp(), 1), to(ibgpB, 2), me)!;
    assert.equal(out.localPref, 100);
    assert.equal(out.nextHop, '198.51.100.7');
    assert.equal(exportRoute(A, from(ebgp(), 1), to(role({ nextHop: 'self' }), 2), me)!.nextHop, '192.0.2.1');
    const local = exportRoute({ origin: 'igp', asPath: [] }, { kind: 'local' }, to(ibgpB, 2), me)!;
    assert.equal(local.nextHop, '192.0.2.1');
    assert.deepEqual(local.asPath, []);
  });

  it('as a route server: no prepend, next hop untouched (RFC 7947)', () => {
    const out = exportRoute(
      A,
      from(ebgp(), 1),
      to(ebgp({ peerAsn: asn(65100), routeServerClient: true }), 2),
      me,
    )!;
    assert.deepEqual(out.asPath, A.asPath);
    assert.equal(out.nextHop, '198.51.100.7');
  });

  it('uses an IPv6 address of ours for IPv6 routes, and drops the link-local next hop', () => {
    const v6: PathAttributes = {
      origin: 'igp',
      asPath: seq(65001),
      mpReachNlri: {
        kind: 'prefixes',
        afi: 2,
        safi: 1,
        nextHop: '2001:db8::7',
        linkLocalNextHop: 'fe80::7',
        nlri: PrefixList.parse(2, ['2001:db8:1::/48']),
      },
    };
    const out = exportRoute(
      v6,
      from(ebgp(), 1),
      to(ebgp({ peerAsn: asn(65100), nextHopIpv6: '2001:db8::1' }), 2),
      me,
    )!;
    assert.ok(out.mpReachNlri?.kind === 'prefixes');
    assert.equal(out.mpReachNlri.nextHop, '2001:db8::1');
    assert.equal(out.mpReachNlri.linkLocalNextHop, undefined);
  });

  it('never sends a route without a usable next hop, and an IPv4 route always with an IPv4 one', () => {
    const rfc8950: PathAttributes = {
      origin: 'igp',
      asPath: seq(65001),
      mpReachNlri: { kind: 'prefixes', afi: 1, safi: 1, nextHop: '2001:db8::7', nlri: PrefixList.empty(1) },
    };
    // An IPv4 route learned with an IPv6 next hop goes out with our IPv4 next hop, as NEXT_HOP.
    const out = exportRoute(rfc8950, from(ebgp(), 1), to(ebgp({ peerAsn: asn(65100) }), 2), me)!;
    assert.equal(out.mpReachNlri, undefined);
    assert.equal(out.nextHop, '192.0.2.1');
    // Without an IPv4 address of ours it cannot go at all; nor can it be reflected as it is.
    const { nextHopIpv4: _v4, ...noV4 } = ebgp({ peerAsn: asn(65100), nextHopIpv6: '2001:db8::1' });
    assert.equal(exportRoute(rfc8950, from(ebgp(), 1), to(noV4, 2), me), undefined);
    const client = role({ reflectorClient: true });
    assert.equal(
      exportRoute(rfc8950, from(role({ reflectorClient: true }), 1), to(client, 2), me),
      undefined,
    );
    // Our own routes: an IPv4 one needs our IPv4 address; an IPv6 one never goes with '::'.
    const local: RouteOrigin = { kind: 'local' };
    assert.equal(exportRoute({ origin: 'igp', asPath: [] }, local, to(noV4, 2), me), undefined);
    const own6: PathAttributes = {
      origin: 'igp',
      asPath: [],
      mpReachNlri: { kind: 'prefixes', afi: 2, safi: 1, nextHop: '::', nlri: PrefixList.empty(2) },
    };
    assert.equal(exportRoute(own6, local, to(ebgp({ peerAsn: asn(65100) }), 2), me), undefined);
    const sent6 = exportRoute(own6, local, to(noV4, 2), me);
    assert.ok(sent6?.mpReachNlri?.kind === 'prefixes');
    assert.equal(sent6.mpReachNlri.nextHop, '2001:db8::1');
  });

  it('passes unknown transitive attributes on with the Partial bit, and drops non-transitive ones', () => {
    const out = exportRoute(
      {
        ...A,
        unknown: [
          { flags: 0xc0, typeCode: 99, value: Uint8Array.of(1) },
          { flags: 0x80, typeCode: 98, value: Uint8Array.of(2) },
        ],
      },
      from(ebgp(), 1),
      to(ebgp({ peerAsn: asn(65100) }), 2),
      me,
    )!;
    assert.deepEqual(out.unknown, [{ flags: 0xe0, typeCode: 99, value: Uint8Array.of(1) }]);
  });
});
