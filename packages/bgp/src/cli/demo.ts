// `bgp-ts demo --codec`: what the codec does, shown on a small sample session.

import type { Asn } from '../wire/index.js';
import {
  Afi,
  KEEPALIVE,
  MessageFramer,
  PrefixList,
  Safi,
  asn,
  decodeFrame,
  encodeMessage,
  makeContext,
  makeEndOfRib,
  makeOpen,
  messageToJson,
  packAnnouncements,
  packWithdrawals,
  shutdownNotification,
  toHex,
} from '../wire/index.js';

interface Out {
  readonly stdout: (s: string) => void;
}

export function demo(io: Out): number {
  const ctx = makeContext({ as4: true });
  const local = asn(4200000001);
  const open = makeOpen({
    asn: local,
    holdTime: 90,
    bgpIdentifier: '192.0.2.1',
    capabilities: [
      { kind: 'multiprotocol', afi: Afi.Ipv4, safi: Safi.Unicast },
      { kind: 'multiprotocol', afi: Afi.Ipv6, safi: Safi.Unicast },
      { kind: 'routeRefresh' },
      { kind: 'enhancedRouteRefresh' },
      {
        kind: 'gracefulRestart',
        restarting: false,
        notification: true,
        restartTime: 120,
        families: [{ afi: Afi.Ipv4, safi: Safi.Unicast, forwardingPreserved: true }],
      },
      { kind: 'fqdn', hostname: 'node-1', domainName: 'tabby.example' },
    ],
  });
  // 64 pod blocks (/26) of 10.65.0.0/20, one attribute set: packed into one UPDATE.
  const blocks = Array.from({ length: 64 }, (_, i) => `10.65.${i >> 2}.${(i & 3) * 64}/26`);
  const announce = packAnnouncements(
    {
      attributes: {
        origin: 'igp',
        asPath: [{ type: 'sequence', asns: [local, 64512 as Asn] }],
        nextHop: '192.0.2.1',
        communities: [((64512 << 16) | 100) >>> 0],
        largeCommunities: [{ globalAdministrator: 4200000001, localData1: 1, localData2: 2 }],
      },
      prefixes: PrefixList.parse(1, blocks),
    },
    ctx,
  );
  const v6 = packAnnouncements(
    {
      attributes: { origin: 'igp', asPath: [{ type: 'sequence', asns: [local] }] },
      prefixes: PrefixList.parse(2, ['fd00:10:65::/122', 'fd00:10:65::40/122']),
      mpNextHop: '2001:db8::1',
      mpLinkLocalNextHop: 'fe80::1',
    },
    ctx,
  );
  const messages = [
    encodeMessage(open, ctx),
    encodeMessage(KEEPALIVE, ctx),
    ...announce,
    ...v6,
    encodeMessage(makeEndOfRib(Afi.Ipv4, Safi.Unicast), ctx),
    ...packWithdrawals(PrefixList.parse(1, blocks.slice(0, 2)), ctx),
    encodeMessage(shutdownNotification('maintenance: node drained'), ctx),
  ];
  io.stdout(`bgp-ts demo: ${messages.length} messages of a sample session, encoded then decoded\n\n`);
  // Feed them as one byte stream cut into 100-byte chunks, as a socket would deliver them.
  const stream = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of messages) {
    stream.set(m, o);
    o += m.length;
  }
  const framer = new MessageFramer();
  let i = 0;
  for (let p = 0; p < stream.length; p += 100) {
    framer.push(stream.subarray(p, p + 100), (_type, frame) => {
      const hex = toHex(frame);
      io.stdout(`#${++i} ${frame.length} bytes: ${hex.length > 96 ? `${hex.slice(0, 96)}...` : hex}\n`);
      io.stdout(`${JSON.stringify(messageToJson(decodeFrame(frame, ctx)))}\n\n`);
    });
  }
  return 0;
}
