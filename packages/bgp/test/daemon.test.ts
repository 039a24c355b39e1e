// The standalone daemon: configuration errors that name file, field and reason; two daemons
// from YAML on loopback; the control socket (status, rib); /metrics; reload that adds and
// removes a peer without touching the other session.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { run } from '../src/cli/main.js';
import type { RunningDaemon } from '../src/daemon/index.js';
import { ConfigError, ask, checkConfig, startDaemon } from '../src/daemon/index.js';
import { until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bgp-ts-daemon-'));
const sink = { write: () => true } as unknown as NodeJS.WritableStream;

describe('daemon configuration', () => {
  const base = {
    routerId: '10.0.0.1',
    asn: 64512,
    peers: [{ name: 'tor', address: '192.0.2.1', asn: 65001 }],
  };
  const bad: [unknown, string, RegExp][] = [
    [{ ...base, routerId: '10.0.0' }, 'routerId', /not an IPv4 address/],
    [{ ...base, asn: 0 }, 'asn', /integer from 1/],
    [
      { ...base, peers: [{ name: 'tor', address: '192.0.2.1', asn: 65001, holdTime: 2 }] },
      'peers[0].holdTime',
      /0 or at least 3/,
    ],
    [
      { ...base, peers: [{ name: 'tor', address: 'x', asn: 65001 }] },
      'peers[0].address',
      /not an IP address/,
    ],
    [
      { ...base, peers: [{ name: 'tor', address: '192.0.2.1', asn: 65001, colour: 'red' }] },
      'peers[0].colour',
      /unknown field/,
    ],
    [{ ...base, peers: [base.peers[0], base.peers[0]] }, 'peers[1].name', /duplicate peer name/],
    [{ ...base, originate: [{ prefix: '10.0.0.1/24' }] }, 'originate[0].prefix', /zero host bits/],
    [
      {
        ...base,
        peers: [
          {
            name: 'tor',
            address: '192.0.2.1',
            asn: 65001,
            import: { rules: [{ match: [{ prefix: ['10.0.0.0/33'] }], then: {} }] },
          },
        ],
      },
      'peers[0].import',
      /not a prefix/,
    ],
    [
      { ...base, peers: [{ name: 'tor', address: '192.0.2.1', asn: 65001, password: 'x'.repeat(81) }] },
      'peers[0].password',
      /1 to 80 bytes/,
    ],
    [
      { ...base, listenRanges: [{ name: 'dyn', prefix: '10.0.0.1/24', asn: 65001 }] },
      'listenRanges[0].prefix',
      /zero host bits/,
    ],
    [{ ...base, listenRanges: [{ name: 'dyn', prefix: '10.0.0.0/24' }] }, 'listenRanges[0].asn', /integer/],
    [
      { ...base, listenRanges: [{ name: 'dyn', prefix: '10.0.0.0/24', asn: 65001, address: '10.0.0.1' }] },
      'listenRanges[0].address',
      /unknown field/,
    ],
    [
      { ...base, listenRanges: [{ name: 'dyn', prefix: '10.0.0.0/24', asn: 65001, maxPeers: 0 }] },
      'listenRanges[0].maxPeers',
      /integer from 1/,
    ],
    [
      {
        ...base,
        listenRanges: [
          { name: 'dyn', prefix: '10.0.0.0/24', asn: 65001 },
          { name: 'dyn', prefix: '10.0.1.0/24', asn: 65001 },
        ],
      },
      'listenRanges[1].name',
      /duplicate listen range name "dyn"/,
    ],
    [
      {
        ...base,
        listenRanges: [
          { name: 'a', prefix: 'fd00::/64', asn: 65001 },
          { name: 'b', prefix: 'fd00:0:0:0::/64', asn: 65002 },
        ],
      },
      'listenRanges[1].prefix',
      /same prefix as listenRanges\[0\]/,
    ],
    [
      {
        ...base,
        peers: [{ name: 'dyn_10.0.0.5', address: '192.0.2.1', asn: 65001 }],
        listenRanges: [{ name: 'dyn', prefix: '10.0.0.0/24', asn: 65001 }],
      },
      'peers[0].name',
      /dynamic peer of listen range "dyn"/,
    ],
  ];
  for (const [doc, path, reason] of bad) {
    it(`names ${path}`, () => {
      assert.throws(
        () => checkConfig(doc, 'speaker.yaml'),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.file === 'speaker.yaml' &&
          e.path.startsWith(path) &&
          reason.test(e.reason),
      );
    });
  }

  it('carries every peer field through to the speaker', () => {
    const c = checkConfig(
      {
        ...base,
        restarting: true,
        selectionDeferralTime: 120,
        peers: [
          {
            name: 'tor',
            address: '192.0.2.1',
            asn: 65001,
            ttlSecurity: 1,
            gracefulRestart: { restartTime: 90 },
            password: 'k',
            addPath: 'receive',
          },
        ],
      },
      'speaker.yaml',
    );
    assert.equal(c.restarting, true);
    assert.equal(c.selectionDeferralTime, 120);
    assert.deepEqual(
      {
        t: c.peers[0]?.ttlSecurity,
        g: c.peers[0]?.gracefulRestart,
        p: c.peers[0]?.password,
        a: c.peers[0]?.addPath,
      },
      { t: 1, g: { restartTime: 90 }, p: 'k', a: 'receive' },
    );
  });

  it('carries listen ranges through: the peer fields as a template, nested ranges allowed', () => {
    const c = checkConfig(
      {
        ...base,
        listenRanges: [
          {
            name: 'dyn',
            prefix: '10.0.0.0/24',
            asn: 65001,
            maxPeers: 10,
            password: 'k',
            ttlSecurity: 1,
            routeReflectorClient: true,
          },
          { name: 'narrow', prefix: '10.0.0.0/28', asn: 65002 },
        ],
      },
      'speaker.yaml',
    );
    assert.deepEqual(c.listenRanges, [
      {
        name: 'dyn',
        prefix: '10.0.0.0/24',
        maxPeers: 10,
        peer: { asn: 65001, password: 'k', ttlSecurity: 1, reflectorClient: true },
      },
      { name: 'narrow', prefix: '10.0.0.0/28', peer: { asn: 65002 } },
    ]);
  });

  it('reports YAML syntax errors with their line, and `bgp-ts check` exits 1 naming them', async () => {
    const f = join(dir, 'broken.yaml');
    writeFileSync(f, 'routerId: 10.0.0.1\npeers: [\n');
    let err = '';
    const code = await run({
      argv: ['check', '--config', f],
      readStdin: () => Promise.resolve(''),
      stdout: () => {},
      stderr: (s) => (err += s),
    });
    assert.equal(code, 1);
    assert.match(err, /broken\.yaml: line \d+/);
  });
});

describe('daemon', () => {
  const running: RunningDaemon[] = [];
  after(async () => {
    for (const d of running) await d.stop();
  });

  it('runs from YAML, answers status and rib on its socket, serves metrics, and reloads peers', async () => {
    const aSock = join(dir, 'a.sock');
    const aFile = join(dir, 'a.yaml');
    const bFile = join(dir, 'b.yaml');
    const aConfig = (extra: string) => `
routerId: 10.0.0.30
asn: 65030
listen: { address: 127.0.0.30, port: 17930 }
controlSocket: ${aSock}
metrics: { address: 127.0.0.30, port: 0 }
logLevel: warn
peers:
  - name: b
    address: 127.0.0.31
    asn: 65031
    passive: true
    holdTime: 9
${extra}`;
    writeFileSync(aFile, aConfig(''));
    writeFileSync(
      bFile,
      `
routerId: 10.0.0.31
asn: 65031
listen: false
controlSocket: ${join(dir, 'b.sock')}
logLevel: warn
peers:
  - { name: a, address: 127.0.0.30, port: 17930, localAddress: 127.0.0.31, asn: 65030, holdTime: 9, connectRetryTime: 1 }
originate:
  - { prefix: 10.65.31.0/26, communities: ["65031:100"] }
`,
    );
    const a = await startDaemon(aFile, { logDestination: sink });
    running.push(a);
    const b = await startDaemon(bFile, { logDestination: sink });
    running.push(b);
    await until(async () => {
      const s = (await ask(aSock, { command: 'status' })) as { peers: { state: string }[] };
      return s.peers[0]?.state === 'established';
    }, 'session up');
    await until(() => a.speaker.ribs[1].size === 1, 'route learned');
    const rib = (await ask(aSock, { command: 'rib', prefix: '10.65.31.0/26' })) as {
      best: { peer: string; attributes: { communities: string[]; asPath: unknown } };
      decidedBy: string;
    };
    assert.equal(rib.best.peer, 'b');
    assert.deepEqual(rib.best.attributes.communities, ['65031:100']);
    assert.equal(rib.decidedBy, 'onlyCandidate');

    // The status table over the socket, as an operator runs it.
    let out = '';
    const code = await run({
      argv: ['status', '--socket', aSock],
      readStdin: () => Promise.resolve(''),
      stdout: (s) => (out += s),
      stderr: () => {},
    });
    assert.equal(code, 0);
    assert.match(out, /^Name\s+Address\s+AS\s+State/m);
    assert.match(out, /^b\s+127\.0\.0\.31\s+65031\s+established/m);
    assert.match(out, /^Update groups:\n {2}ipv4-unicast {2}1 prefixes, 0 waiting {2}b$/m);

    const metrics = await (await fetch(`http://127.0.0.30:${a.metricsPort}/metrics`)).text();
    assert.match(metrics, /bgp_ts_peer_session_state\{peer="b",peer_asn="65031"\} 6/);
    assert.match(metrics, /bgp_ts_peer_prefixes\{peer="b",peer_asn="65031",kind="received"\} 1/);
    assert.match(
      metrics,
      /bgp_ts_peer_messages_total\{peer="b",peer_asn="65031",direction="in",type="update"\} \d+/,
    );
    assert.match(metrics, /bgp_ts_peer_established_transitions_total\{peer="b",peer_asn="65031"\} 1/);
    // UPDATEs go out pre-encoded, past the FSM: they count too (here, a's End-of-RIB markers).
    assert.match(
      metrics,
      /bgp_ts_peer_messages_total\{peer="b",peer_asn="65031",direction="out",type="update"\} [1-9]/,
    );
    assert.match(metrics, /bgp_ts_nodejs_eventloop_lag_seconds/);

    // Reload with one more peer: it is added, b's session is not touched.
    writeFileSync(aFile, aConfig('  - { name: c, address: 127.0.0.32, asn: 65032, passive: true }\n'));
    const noRanges = { added: [], removed: [], changed: [] };
    assert.deepEqual(await a.reload(), {
      added: ['c'],
      removed: [],
      changed: [],
      softened: [],
      ranges: noRanges,
    });
    const st = a.speaker.status();
    assert.deepEqual(
      st.map((s) => [s.name, s.state]),
      [
        ['b', 'established'],
        ['c', 'active'],
      ],
    );
    writeFileSync(aFile, aConfig(''));
    assert.deepEqual(await a.reload(), {
      added: [],
      removed: ['c'],
      changed: [],
      softened: [],
      ranges: noRanges,
    });
    assert.equal(a.speaker.status()[0]?.state, 'established');
    const after = await (await fetch(`http://127.0.0.30:${a.metricsPort}/metrics`)).text();
    assert.match(
      after,
      /bgp_ts_peer_established_transitions_total\{peer="b",peer_asn="65031"\} 1/,
      'no reconnect',
    );
    assert.doesNotMatch(after, /peer="c"/, 'the removed peer has no series left');
  });
  it('takes dynamic peers from a listen range: status table, metrics, and a reload that removes the range', async () => {
    const aSock = join(dir, 'dyn-a.sock');
    const aFile = join(dir, 'dyn-a.yaml');
    const aConfig = (ranges: string) => `
routerId: 10.0.9.30
asn: 65030
listen: { address: 127.0.9.30, port: 18930 }
controlSocket: ${aSock}
metrics: { address: 127.0.9.30, port: 0 }
logLevel: warn
${ranges}`;
    writeFileSync(
      aFile,
      aConfig(
        'listenRanges:\n  - { name: dyn, prefix: 127.0.9.32/30, asn: 65033, holdTime: 9, maxPeers: 2 }\n',
      ),
    );
    const bFile = join(dir, 'dyn-b.yaml');
    writeFileSync(
      bFile,
      `
routerId: 10.0.9.33
asn: 65033
listen: false
controlSocket: ${join(dir, 'dyn-b.sock')}
logLevel: warn
peers:
  - { name: a, address: 127.0.9.30, port: 18930, localAddress: 127.0.9.33, asn: 65030, holdTime: 9, connectRetryTime: 1 }
originate:
  - { prefix: 10.65.33.0/26 }
`,
    );
    const a = await startDaemon(aFile, { logDestination: sink });
    running.push(a);
    const b = await startDaemon(bFile, { logDestination: sink });
    running.push(b);
    await until(() => a.speaker.ribs[1].size === 1, 'route from the dynamic peer');

    let out = '';
    const code = await run({
      argv: ['status', '--socket', aSock],
      readStdin: () => Promise.resolve(''),
      stdout: (s) => (out += s),
      stderr: () => {},
    });
    assert.equal(code, 0);
    assert.match(out, /^dyn_127\.0\.9\.33\s+127\.0\.9\.33\s+65033\s+established/m);
    const metrics = async () => (await fetch(`http://127.0.9.30:${a.metricsPort}/metrics`)).text();
    assert.match(
      await metrics(),
      /bgp_ts_peer_established_transitions_total\{peer="dyn_127.0.9.33",peer_asn="65033"\} 1/,
    );

    writeFileSync(aFile, aConfig(''));
    const r = await a.reload();
    assert.deepEqual(r.ranges, { added: [], removed: ['dyn'], changed: [] });
    await until(() => a.speaker.status().length === 0 && a.speaker.ribs[1].size === 0, 'peer and route gone');
    await until(
      () => /Peer De-configured \(6\/3\)/.test(b.speaker.status()[0]?.lastError ?? ''),
      'Cease / Peer De-configured at the caller',
    );
    assert.doesNotMatch(await metrics(), /peer="dyn_/, 'its series went with it');
  });
});
