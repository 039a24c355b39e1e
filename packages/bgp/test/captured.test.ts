// Messages recorded from real BIRD, FRR and GoBGP sessions (test/vectors/captured, made by
// tools/capture): each session's byte stream framed at every split, every message decoded
// without error under the session's context, the announced prefixes and their attributes
// checked against what the daemon was configured to send, and every message mirrored.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BgpMessage, PathAttributes, PrefixList } from '../src/wire/index.js';
import {
  MessageFramer,
  decodeFrame,
  encodeMessage,
  formatCommunity,
  formatExtendedCommunity,
  formatLargeCommunity,
  maxMessageLength,
  toHex,
} from '../src/wire/index.js';
import { contextFor, hex, loadJsonDir } from './helpers.js';

interface Capture {
  source: string;
  session: { as4?: boolean; addPath?: string[]; extendedMessage?: boolean };
  messages: { dir: string; hex: string; note?: string }[];
  expect: {
    announced?: { ipv4?: string[]; ipv6?: string[] };
    routes?: Record<string, Record<string, unknown> | Record<string, unknown>[]>;
  };
}

function flatAsPath(a: PathAttributes): number[] {
  return (a.asPath ?? []).flatMap((s) => [...s.asns]);
}

/** The expected route's fields, in the capture's notation, against our decode. */
function checkRoute(prefix: string, a: PathAttributes, want: Record<string, unknown>): void {
  const at = (what: string) => `${prefix}: ${what}`;
  if (want['origin'] !== undefined) assert.equal(a.origin, want['origin'], at('origin'));
  // On a 2-octet session the capture records the AS_PATH as sent (AS_TRANS in place of
  // 4-octet ASNs) and the AS4_PATH beside it; we report the path RFC 6793 §4.2.3
  // reconstructs, which with equal lengths is the AS4_PATH.
  const path = want['as4Path'] ?? want['asPath'];
  if (path !== undefined) assert.deepEqual(flatAsPath(a), path, at('asPath'));
  if (want['med'] !== undefined) assert.equal(a.multiExitDisc, want['med'], at('med'));
  if (want['localPref'] !== undefined) assert.equal(a.localPref, want['localPref'], at('localPref'));
  if (want['communities'] !== undefined) {
    assert.deepEqual(a.communities?.map(formatCommunity), want['communities'], at('communities'));
  }
  if (want['largeCommunities'] !== undefined) {
    assert.deepEqual(
      a.largeCommunities?.map(formatLargeCommunity),
      want['largeCommunities'],
      at('largeCommunities'),
    );
  }
  if (want['extendedCommunities'] !== undefined) {
    assert.deepEqual(
      a.extendedCommunities?.map(formatExtendedCommunity),
      (want['extendedCommunities'] as string[]).map((s) => s.replace(' ', ':')),
      at('extendedCommunities'),
    );
  }
  if (want['nextHop'] !== undefined) assert.equal(a.nextHop, want['nextHop'], at('nextHop'));
  if (want['mpNextHop'] !== undefined) {
    assert.equal(
      a.mpReachNlri?.kind === 'prefixes' && a.mpReachNlri.nextHop,
      want['mpNextHop'],
      at('mpNextHop'),
    );
  }
  if (want['atomicAggregate'] !== undefined)
    assert.equal(a.atomicAggregate, want['atomicAggregate'], at('atomicAggregate'));
  const agg = (want['as4Aggregator'] ?? want['aggregator']) as { as: number; id: string } | undefined;
  if (agg !== undefined) assert.deepEqual(a.aggregator, { asn: agg.as, address: agg.id }, at('aggregator'));
  if (want['originatorId'] !== undefined)
    assert.equal(a.originatorId, want['originatorId'], at('originatorId'));
  if (want['clusterList'] !== undefined)
    assert.deepEqual(a.clusterList, want['clusterList'], at('clusterList'));
}

describe('captured sessions', () => {
  const files = loadJsonDir<Capture>('captured');
  it('cover BIRD, FRR and GoBGP', () => {
    for (const d of ['bird', 'frr', 'gobgp'])
      assert.ok(
        files.some((f) => f.file.startsWith(d)),
        d,
      );
  });
  for (const { file, data } of files) {
    describe(file, () => {
      const ctx = contextFor(data.session);
      const fromPeer = data.messages.filter((m) => m.dir === 'peer-to-us').map((m) => hex(m.hex));

      it('frames the whole stream identically at every split', () => {
        const stream = new Uint8Array(fromPeer.reduce((n, m) => n + m.length, 0));
        let o = 0;
        for (const m of fromPeer) {
          stream.set(m, o);
          o += m.length;
        }
        const want = fromPeer.map(toHex);
        for (let cut = 0; cut <= stream.length; cut++) {
          const got: string[] = [];
          const f = new MessageFramer(maxMessageLength(ctx));
          f.push(stream.subarray(0, cut), (_t, fr) => got.push(toHex(fr)));
          f.push(stream.subarray(cut), (_t, fr) => got.push(toHex(fr)));
          assert.deepEqual(got, want, `cut ${cut}`);
        }
      });

      const decoded: BgpMessage[] = [];
      it('decodes every message without error and mirrors it', () => {
        for (const m of data.messages) {
          const bytes = hex(m.hex);
          const msg = decodeFrame(bytes, ctx);
          if (msg.type === 'update') {
            assert.equal(
              msg.malformed,
              undefined,
              `${m.note ?? ''}: ${msg.malformed?.errors.map((e) => e.message).join('; ')}`,
            );
          }
          assert.deepEqual(decodeFrame(encodeMessage(msg, ctx), ctx), msg, m.note);
          if (m.dir === 'peer-to-us') decoded.push(msg);
        }
      });

      it('announces what the daemon was configured to send, with its attributes', () => {
        // The last announcement of each (prefix, path id) wins, as in a RIB; route
        // refreshes repeat the same routes.
        const latest = new Map<string, { prefix: string; a: PathAttributes }>();
        const note = (list: PrefixList, a: PathAttributes) => {
          list
            .toStrings()
            .forEach((prefix, i) => latest.set(`${prefix}#${list.pathIds?.[i] ?? ''}`, { prefix, a }));
        };
        for (const msg of decoded) {
          if (msg.type !== 'update') continue;
          note(msg.nlri, msg.pathAttributes);
          if (msg.pathAttributes.mpReachNlri?.kind === 'prefixes')
            note(msg.pathAttributes.mpReachNlri.nlri, msg.pathAttributes);
        }
        const paths = new Map<string, PathAttributes[]>();
        for (const { prefix, a } of latest.values()) paths.set(prefix, [...(paths.get(prefix) ?? []), a]);
        const want = data.expect.announced;
        assert.ok(want !== undefined, 'the capture states what was announced');
        assert.deepEqual([...paths.keys()].sort(), [...(want.ipv4 ?? []), ...(want.ipv6 ?? [])].sort());
        for (const [prefix, expected] of Object.entries(data.expect.routes ?? {})) {
          const wanted: Record<string, unknown>[] = Array.isArray(expected) ? expected : [expected];
          const got = [...(paths.get(prefix) ?? [])];
          assert.equal(got.length, wanted.length, `${prefix}: number of paths`);
          // Each expected path must match a distinct received one (ADD-PATH sends several).
          for (const w of wanted) {
            const i = got.findIndex((a) => {
              try {
                checkRoute(prefix, a, w);
                return true;
              } catch {
                return false;
              }
            });
            if (i < 0) checkRoute(prefix, got[0]!, w); // fails, showing the difference
            got.splice(i, 1);
          }
        }
      });
    });
  }
});
