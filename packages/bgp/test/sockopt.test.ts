// TCP-MD5 (RFC 2385), GTSM (RFC 5082) and SO_BINDTODEVICE through src/sockopt, on the real
// kernel over loopback (127.0.0.0/8, ::1): Node to Node, and against BIRD 2 in both
// directions. A wrong key or a low TTL must never connect: the peer's kernel drops the SYNs,
// so the connect times out (short timeouts keep this quick).
//
// Skips only for what is truly missing, and says what: a kernel without TCP_MD5SIG or IPv6,
// no CAP_NET_RAW for SO_BINDTODEVICE, no `bird` (but with CI=true a missing bird fails, as CI
// installs Debian's bird2). A missing addon always fails: `npm ci` builds it.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  accessSync,
  constants,
  copyFileSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ADDON_PATH,
  ConnectTimeoutError,
  GTSM_TTL,
  MD5_MAX_KEY_LENGTH,
  SockoptError,
  SockoptUnavailableError,
  bindToDevice,
  connectTcp,
  getSocketOptions,
  gtsmMinTtl,
  setMd5Key,
  setMinTtl,
  setTtl,
  socketFd,
  sockoptAvailable,
} from '../src/sockopt/index.js';
import type { ConnectOptions } from '../src/sockopt/index.js';
import type * as Sockopt from '../src/sockopt/index.js';
import type { BgpMessage } from '../src/wire/index.js';
import { KEEPALIVE, MessageFramer, asn, decodeFrame, encodeMessage, makeOpen } from '../src/wire/index.js';

const FAIL_MS = 1200; // how long a connect that must not succeed is given
const OK_MS = 3000;

// ---- helpers ---------------------------------------------------------------------------

async function listen(host: string, port = 0): Promise<net.Server> {
  const server = net.createServer();
  server.listen({ host, port });
  await once(server, 'listening');
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Every socket and server a test opened, closed when it ends. */
class Resources {
  private readonly items: { destroy?: () => void; close?: () => void }[] = [];
  socket(s: net.Socket): net.Socket {
    this.items.push(s);
    return s;
  }
  async server(host: string, port = 0): Promise<net.Server> {
    const s = await listen(host, port);
    // Connections the server accepts are destroyed with it.
    s.on('connection', (c) => this.items.push(c));
    this.items.push(s);
    return s;
  }
  async connect(opts: ConnectOptions): Promise<net.Socket> {
    return this.socket(await connectTcp(opts));
  }
  closeAll(): void {
    for (const x of this.items.splice(0)) {
      if (x instanceof net.Socket) x.destroy();
      else x.close?.();
    }
  }
}

function withResources(fn: (r: Resources, t: TestContext) => Promise<void>) {
  return async (t: TestContext) => {
    const r = new Resources();
    try {
      await fn(r, t);
    } finally {
      r.closeAll();
    }
  };
}

/** Connects and checks bytes flow both ways through the accepted socket. */
async function connectsAndTalks(
  server: net.Server,
  opts: Omit<ConnectOptions, 'port' | 'timeoutMs'>,
  r: Resources,
) {
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = await r.connect({ ...opts, port: portOf(server), timeoutMs: OK_MS });
  const [peer] = await accepted;
  r.socket(peer);
  client.write('ping');
  const [got] = (await once(peer, 'data')) as [Buffer];
  assert.equal(got.toString(), 'ping');
  peer.write('pong');
  const [back] = (await once(client, 'data')) as [Buffer];
  assert.equal(back.toString(), 'pong');
  return { client, peer };
}

/** The connect must time out (SYNs dropped), and the server must see no connection. */
async function neverConnects(server: net.Server, opts: Omit<ConnectOptions, 'port' | 'timeoutMs'>) {
  let accepted = false;
  const onConn = (c: net.Socket) => {
    accepted = true;
    c.destroy();
  };
  server.on('connection', onConn);
  try {
    await assert.rejects(connectTcp({ ...opts, port: portOf(server), timeoutMs: FAIL_MS }), (e: unknown) => {
      assert.ok(e instanceof ConnectTimeoutError, `expected a timeout, got ${String(e)}`);
      assert.equal(e.code, 'ETIMEDOUT');
      return true;
    });
    assert.equal(accepted, false, 'the listener accepted a connection it should have dropped');
  } finally {
    server.off('connection', onConn);
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Our TCP sockets as /proc/net/tcp{,6} list them; state in hex (02 SYN_SENT, 0A LISTEN). */
function tcpSockets(): { localPort: number; remotePort: number; state: string }[] {
  const out: { localPort: number; remotePort: number; state: string }[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (local === undefined || remote === undefined || state === undefined) continue;
      const port = (a: string) => parseInt(a.split(':')[1] ?? '', 16);
      out.push({ localPort: port(local), remotePort: port(remote), state });
    }
  }
  return out;
}

let md5Missing: string | null = null;
let ipv6Missing: string | null = null;

before(async () => {
  // The addon is built by `npm ci` (node-gyp); its absence is a failure, not a skip.
  assert.ok(sockoptAvailable(), `the sockopt addon does not load from ${ADDON_PATH}`);
  const probe = await listen('127.0.0.1');
  try {
    setMd5Key(probe, '127.0.0.1', 'probe');
  } catch (e) {
    if (e instanceof SockoptError && (e.code === 'ENOPROTOOPT' || e.code === 'EINVAL')) {
      md5Missing = `the kernel has no TCP_MD5SIG (CONFIG_TCP_MD5SIG): ${e.message}`;
    } else throw e;
  } finally {
    probe.close();
  }
  try {
    (await listen('::1')).close();
  } catch (e) {
    ipv6Missing = `no IPv6 on loopback (::1): ${(e as Error).message}`;
  }
});

function needs(t: TestContext, ...missing: (string | null)[]): boolean {
  const why = missing.filter((m): m is string => m !== null);
  if (why.length === 0) return true;
  t.skip(why.join('; '));
  return false;
}

// ---- the API without a peer -------------------------------------------------------------

describe('sockopt: arguments, errors, descriptors', () => {
  it('rejects bad keys, TTLs, addresses and ports before touching a socket', async () => {
    const server = await listen('127.0.0.1');
    try {
      assert.throws(() => setMd5Key(server, '127.0.0.1', ''), RangeError);
      assert.throws(() => setMd5Key(server, '127.0.0.1', 'k'.repeat(MD5_MAX_KEY_LENGTH + 1)), RangeError);
      assert.throws(() => setMd5Key(server, 'localhost', 'k'), TypeError);
      assert.throws(() => setMd5Key(server, '10.0.0.0', 'k', { prefixLength: 33 }), RangeError);
      assert.throws(() => setTtl(server, 0), RangeError);
      assert.throws(() => setTtl(server, 256), RangeError);
      assert.throws(() => setMinTtl(server, -1), RangeError);
      assert.throws(() => bindToDevice(server, 'x'.repeat(16)), RangeError);
      await assert.rejects(connectTcp({ host: 'localhost', port: 1, timeoutMs: 100 }), TypeError);
      await assert.rejects(connectTcp({ host: '127.0.0.1', port: 0, timeoutMs: 100 }), RangeError);
      await assert.rejects(connectTcp({ host: '127.0.0.1', port: 1, timeoutMs: 0 }), RangeError);
      assert.equal(gtsmMinTtl(1), 255);
      assert.equal(gtsmMinTtl(3), 253);
      assert.throws(() => gtsmMinTtl(0), RangeError);
    } finally {
      server.close();
    }
  });

  it('finds the descriptor of a server and a socket, and refuses one without', async () => {
    const server = await listen('127.0.0.1');
    try {
      assert.ok(socketFd(server) > 2);
      assert.throws(() => socketFd(net.createServer()), /no file descriptor/);
      const s = net.connect(portOf(server), '127.0.0.1');
      await once(s, 'connect');
      assert.ok(socketFd(s) > 2);
      s.destroy();
    } finally {
      server.close();
    }
  });

  it('reports a failing option as SockoptError naming the option and errno, leaking no descriptor', async () => {
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      await assert.rejects(
        connectTcp({ host: '127.0.0.1', port: 9, bindDevice: 'nosuchdev0', timeoutMs: 100 }),
        (e: unknown) => {
          assert.ok(e instanceof SockoptError, String(e));
          // ENODEV for an unknown interface; EPERM first when CAP_NET_RAW is missing.
          assert.ok(e.code === 'ENODEV' || e.code === 'EPERM', e.code);
          assert.equal(e.option, 'SO_BINDTODEVICE');
          assert.equal(e.syscall, 'setsockopt');
          assert.match(e.message, /^SO_BINDTODEVICE: /);
          return true;
        },
      );
      await assert.rejects(
        connectTcp({ host: '127.0.0.1', port: 9, localAddress: '::1', timeoutMs: 100 }),
        (e: unknown) =>
          e instanceof SockoptError && e.code === 'EAFNOSUPPORT' && e.option === 'local address',
      );
      await assert.rejects(
        // 192.0.2.1 is not ours: bind() fails with EADDRNOTAVAIL
        connectTcp({ host: '127.0.0.1', port: 9, localAddress: '192.0.2.254', timeoutMs: 100 }),
        (e: unknown) => e instanceof SockoptError && e.code === 'EADDRNOTAVAIL' && e.option === 'bind',
      );
    }
    // 60 failures: a leak would show as dozens more; allow for the runner's own noise
    assert.ok(openFds() < before + 10, `${openFds()} descriptors open, ${before} before`);
  });

  it('closes the socket of a connect that times out or is aborted', async (t) => {
    if (!needs(t, md5Missing)) return;
    const server = await listen('127.0.0.1');
    try {
      setMd5Key(server, '127.0.0.1', 'right');
      const port = portOf(server);
      // An open descriptor keeps its socket in SYN_SENT, retrying for minutes.
      const synSent = () => tcpSockets().filter((x) => x.state === '02' && x.remotePort === port).length;
      const timeouts = Array.from({ length: 10 }, () =>
        assert.rejects(connectTcp({ host: '127.0.0.1', port, timeoutMs: 200 }), ConnectTimeoutError),
      );
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(synSent(), 10, 'the connects are under way');
      await Promise.all(timeouts);
      const ac = new AbortController();
      const p = connectTcp({ host: '127.0.0.1', port, timeoutMs: 5000, signal: ac.signal });
      setTimeout(() => ac.abort(new Error('stopped by the test')), 50);
      await assert.rejects(p, /stopped by the test/);
      await new Promise((r) => setTimeout(r, 50)); // destroy() closes on the next tick
      assert.equal(synSent(), 0, 'a socket of a failed connect is still open');
    } finally {
      server.close();
    }
  });

  it('without the addon, fails loudly with SockoptUnavailableError naming the missing file', async () => {
    // The compiled wrapper, copied where no build/Release/bgp_sockopt.node is beside it.
    const root = mkdtempSync(join(tmpdir(), 'sockopt-missing-'));
    try {
      const here = fileURLToPath(new URL('../src/sockopt/', import.meta.url));
      const dir = join(root, 'dist', 'src', 'sockopt');
      mkdirSync(dir, { recursive: true });
      for (const f of ['index.js', 'native.js', 'errors.js']) copyFileSync(join(here, f), join(dir, f));
      const m = (await import(pathToFileURL(join(dir, 'index.js')).href)) as typeof Sockopt;
      const missing = join(root, 'build', 'Release', 'bgp_sockopt.node');
      assert.equal(m.sockoptAvailable(), false);
      const server = await listen('127.0.0.1');
      try {
        assert.throws(
          () => m.setMd5Key(server, '127.0.0.1', 'secret'),
          (e: unknown) => {
            assert.ok(e instanceof m.SockoptUnavailableError);
            assert.equal(e.code, 'ERR_BGP_SOCKOPT_UNAVAILABLE');
            assert.equal(e.addonPath, missing);
            assert.ok(e.message.includes(missing) && e.message.includes('TCP-MD5'), e.message);
            return true;
          },
        );
      } finally {
        server.close();
      }
      await assert.rejects(
        m.connectTcp({ host: '127.0.0.1', port: 179, md5Key: 'secret', timeoutMs: 100 }),
        m.SockoptUnavailableError,
      );
      // and our own copy is a different class: the error is the copy's, typed as documented
      assert.notEqual(m.SockoptUnavailableError, SockoptUnavailableError);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// ---- TCP-MD5, RFC 2385 ----------------------------------------------------------------------

describe('TCP-MD5 (RFC 2385) between Node sockets on loopback', () => {
  it(
    'IPv4: the same key connects; a wrong, missing or unexpected key never does',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing)) return;
      const server = await r.server('127.0.0.1');
      setMd5Key(server, '127.0.0.2', 'tabby-secret');
      const { client } = await connectsAndTalks(
        server,
        { host: '127.0.0.1', localAddress: '127.0.0.2', md5Key: 'tabby-secret' },
        r,
      );
      assert.equal(client.localAddress, '127.0.0.2');
      await Promise.all([
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.2', md5Key: 'tabby-wrong' }),
        // missing: the listener has a key for this peer, the SYN is unsigned
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.2' }),
        // unexpected: signed, but the listener has no key for 127.0.0.3
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.3', md5Key: 'tabby-secret' }),
      ]);
      // a peer without a key configured still connects unsigned
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.3' }, r);
    }),
  );

  it(
    'removing the key on the listener: unsigned connects, signed no longer does',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing)) return;
      const server = await r.server('127.0.0.1');
      setMd5Key(server, '127.0.0.4', 'to-be-removed');
      await neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.4' });
      assert.equal(setMd5Key(server, '127.0.0.4', null), true);
      assert.equal(setMd5Key(server, '127.0.0.4', null), false, 'a second removal finds nothing');
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.4' }, r);
      await neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.4', md5Key: 'to-be-removed' });
      // and a replaced key takes effect for new connections
      setMd5Key(server, '127.0.0.4', 'first');
      setMd5Key(server, '127.0.0.4', 'second');
      await neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.4', md5Key: 'first' });
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.4', md5Key: 'second' }, r);
    }),
  );

  it(
    'keys up to 80 bytes (TCP_MD5SIG_MAXKEYLEN), as bytes too',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing)) return;
      const server = await r.server('127.0.0.1');
      const long = 'x'.repeat(MD5_MAX_KEY_LENGTH - 2) + 'é'; // 80 bytes in UTF-8
      assert.equal(Buffer.byteLength(long), MD5_MAX_KEY_LENGTH);
      setMd5Key(server, '127.0.0.5', long);
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.5', md5Key: long }, r);
      const bytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
      setMd5Key(server, '127.0.0.6', bytes);
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.6', md5Key: bytes }, r);
      await neverConnects(server, {
        host: '127.0.0.1',
        localAddress: '127.0.0.6',
        md5Key: Uint8Array.from(bytes, (b) => b ^ 1),
      });
    }),
  );

  it(
    'one key for a prefix of peers (TCP_MD5SIG_EXT, TCP_MD5SIG_FLAG_PREFIX)',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing)) return;
      const server = await r.server('127.0.0.1');
      setMd5Key(server, '127.0.7.0', 'subnet-key', { prefixLength: 24 });
      await connectsAndTalks(
        server,
        { host: '127.0.0.1', localAddress: '127.0.7.9', md5Key: 'subnet-key' },
        r,
      );
      await neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.7.10' });
      // outside the prefix there is no key
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.8.1' }, r);
      assert.equal(setMd5Key(server, '127.0.7.0', null, { prefixLength: 24 }), true);
    }),
  );

  it(
    'IPv6 on ::1',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing, ipv6Missing)) return;
      const server = await r.server('::1');
      setMd5Key(server, '::1', 'six');
      const { client } = await connectsAndTalks(server, { host: '::1', md5Key: 'six' }, r);
      assert.equal(client.remoteFamily, 'IPv6');
      await Promise.all([
        neverConnects(server, { host: '::1', md5Key: 'seven' }),
        neverConnects(server, { host: '::1' }),
      ]);
    }),
  );

  it(
    'a dual-stack listener (::) keys IPv4 peers as ::ffff:a.b.c.d',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing, ipv6Missing)) return;
      const server = await r.server('::');
      assert.equal(getSocketOptions(server).family, 6);
      setMd5Key(server, '127.0.0.8', 'mapped'); // given as IPv4, filed as ::ffff:127.0.0.8
      setMd5Key(server, '::ffff:127.0.0.9', 'mapped-too'); // or already mapped
      await connectsAndTalks(server, { host: '127.0.0.1', localAddress: '127.0.0.8', md5Key: 'mapped' }, r);
      await connectsAndTalks(
        server,
        { host: '127.0.0.1', localAddress: '127.0.0.9', md5Key: 'mapped-too' },
        r,
      );
      await Promise.all([
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.8', md5Key: 'wrong' }),
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.9' }),
      ]);
      // an IPv4-only listener cannot take an IPv6 peer's key
      const v4 = await r.server('127.0.0.1');
      assert.throws(
        () => setMd5Key(v4, '::1', 'k'),
        (e: unknown) => e instanceof SockoptError && e.code === 'EAFNOSUPPORT',
      );
    }),
  );
});

// ---- GTSM, RFC 5082 --------------------------------------------------------------------------

describe('GTSM (RFC 5082) on loopback', () => {
  // On loopback the TTL is not decremented: what the client sends is what arrives.
  for (const [family, host] of [
    ['IPv4', '127.0.0.1'],
    ['IPv6', '::1'],
    ['IPv4 to a dual-stack listener', '127.0.0.1'],
  ] as const) {
    it(
      `${family}: a listener with minTtl 255 accepts TTL 255 and drops TTL 64`,
      withResources(async (r, t) => {
        if (family !== 'IPv4' && !needs(t, ipv6Missing)) return;
        const server = await r.server(family === 'IPv4' ? host : family === 'IPv6' ? '::1' : '::');
        setTtl(server, GTSM_TTL);
        setMinTtl(server, gtsmMinTtl(1));
        const o = getSocketOptions(server);
        assert.equal(o.minTtl, 255);
        assert.equal(o.ttl, 255);
        if (o.family === 6) {
          assert.equal(o.minHopCount, 255);
          assert.equal(o.hopLimit, 255);
        }
        const { client, peer } = await connectsAndTalks(server, { host, ttl: 255, minTtl: 255 }, r);
        // the accepted socket inherits the listener's GTSM settings
        const p = getSocketOptions(peer);
        assert.equal(p.minTtl, 255);
        assert.equal(p.ttl, 255);
        assert.equal(getSocketOptions(client).ttl, 255);
        await neverConnects(server, { host, ttl: 64 });
        // turned off again, TTL 64 is accepted
        setMinTtl(server, 0);
        await connectsAndTalks(server, { host, ttl: 64 }, r);
      }),
    );
  }

  it(
    "the client's minTtl drops a SYN-ACK sent with the default TTL",
    withResources(async (r) => {
      const server = await r.server('127.0.0.1');
      await neverConnects(server, { host: '127.0.0.1', ttl: 255, minTtl: 255 });
      setTtl(server, 255);
      await connectsAndTalks(server, { host: '127.0.0.1', ttl: 255, minTtl: 255 }, r);
    }),
  );

  it(
    'with TCP-MD5 at the same time',
    withResources(async (r, t) => {
      if (!needs(t, md5Missing)) return;
      const server = await r.server('127.0.0.1');
      setTtl(server, 255);
      setMinTtl(server, 255);
      setMd5Key(server, '127.0.0.10', 'both');
      await connectsAndTalks(
        server,
        { host: '127.0.0.1', localAddress: '127.0.0.10', md5Key: 'both', ttl: 255, minTtl: 255 },
        r,
      );
      await Promise.all([
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.10', md5Key: 'both', ttl: 254 }),
        neverConnects(server, { host: '127.0.0.1', localAddress: '127.0.0.10', ttl: 255 }),
      ]);
    }),
  );
});

// ---- SO_BINDTODEVICE ---------------------------------------------------------------------------

describe('SO_BINDTODEVICE', () => {
  // Linux 5.7+ lets any process bind a socket not yet bound to a device; earlier kernels,
  // and changing or removing a binding, need CAP_NET_RAW.
  const lacksCapability = (t: TestContext, e: unknown, what: string): boolean => {
    if (e instanceof SockoptError && e.code === 'EPERM') {
      t.skip(`${what} needs CAP_NET_RAW, which this process lacks (${e.message})`);
      return true;
    }
    return false;
  };

  it(
    'binds a listener and a connecting socket to lo',
    withResources(async (r, t) => {
      const server = await r.server('127.0.0.1');
      try {
        bindToDevice(server, 'lo');
      } catch (e) {
        if (lacksCapability(t, e, 'SO_BINDTODEVICE')) return;
        throw e;
      }
      assert.equal(getSocketOptions(server).device, 'lo');
      const { client } = await connectsAndTalks(server, { host: '127.0.0.1', bindDevice: 'lo' }, r);
      assert.equal(getSocketOptions(client).device, 'lo');
    }),
  );

  it(
    'unbinds with null',
    withResources(async (r, t) => {
      const server = await r.server('127.0.0.1');
      try {
        bindToDevice(server, 'lo');
        bindToDevice(server, null);
      } catch (e) {
        if (lacksCapability(t, e, 'changing SO_BINDTODEVICE')) return;
        throw e;
      }
      assert.equal(getSocketOptions(server).device, '');
    }),
  );
});

// ---- interop with BIRD 2 -------------------------------------------------------------------------

function findBird(): { bird: string; birdc: string } | null {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (d === '') continue;
    try {
      accessSync(join(d, 'bird'), constants.X_OK);
      accessSync(join(d, 'birdc'), constants.X_OK);
      return { bird: join(d, 'bird'), birdc: join(d, 'birdc') };
    } catch {
      /* next */
    }
  }
  return null;
}

/** Reads BGP messages off a socket with the codec's framer. */
class BgpReader {
  private readonly queue: BgpMessage[] = [];
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;
  constructor(socket: net.Socket) {
    const framer = new MessageFramer();
    socket.on('data', (chunk: Buffer) => {
      framer.push(chunk, (_type, frame) => this.queue.push(decodeFrame(frame)));
      this.waiter?.();
    });
    const end = (e?: Error) => {
      this.ended ??= e ?? new Error('the connection closed');
      this.waiter?.();
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }
  async next(timeoutMs = 5000): Promise<BgpMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) return m;
      if (this.ended !== null) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no BGP message in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
  }
}

/** OPEN and KEEPALIVE both ways on a connected socket, checked with the codec. */
async function bgpHandshake(socket: net.Socket, localAsn: number, id: string, peerAsn: number) {
  const reader = new BgpReader(socket);
  const open = makeOpen({
    asn: asn(localAsn),
    holdTime: 90,
    bgpIdentifier: id,
    capabilities: [{ kind: 'multiprotocol', afi: 1, safi: 1 }],
  });
  socket.write(encodeMessage(open));
  const theirs = await reader.next();
  assert.equal(theirs.type, 'open', `expected OPEN, got ${JSON.stringify(theirs)}`);
  if (theirs.type === 'open') {
    assert.equal(theirs.myAutonomousSystem, peerAsn);
    assert.equal(theirs.bgpIdentifier, '10.53.0.1');
  }
  socket.write(encodeMessage(KEEPALIVE));
  const ka = await reader.next();
  assert.equal(ka.type, 'keepalive', `expected KEEPALIVE, got ${JSON.stringify(ka)}`);
}

describe('TCP-MD5 interop with BIRD 2', () => {
  // BIRD listens on 127.0.53.1; Node peers connect from .2 (right key) and .3 (wrong key);
  // BIRD connects to Node listeners on .4 (right key) and .5 (wrong key).
  const BIRD = '127.0.53.1';
  const PASSWORD = 'tabby-bird-secret';
  const found = findBird();
  let dir = '';
  let ctl = '';
  let birdPort = 0;
  let bird: ChildProcess | null = null;
  let birdLog = '';
  const servers: net.Server[] = [];
  const accepted: { good: net.Socket[]; wrong: net.Socket[] } = { good: [], wrong: [] };
  let skip: string | null = null;

  const birdc = (...args: string[]): string => {
    const r = spawnSync(found!.birdc, ['-s', ctl, ...args], { encoding: 'utf8', timeout: 5000 });
    return `${r.stdout}${r.stderr}`;
  };
  const protoState = (name: string): string => {
    const line = birdc('show', 'protocols', name)
      .split('\n')
      .find((l) => l.startsWith(name));
    return line ?? '';
  };
  const waitFor = async (what: string, cond: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline)
        assert.fail(`${what}: not within ${ms} ms\nbirdc:\n${birdc('show', 'protocols')}\nlog:\n${birdLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    if (md5Missing !== null) {
      skip = md5Missing;
      return;
    }
    if (found === null) {
      // CI installs bird2, so there its absence is a failure.
      assert.notEqual(
        process.env['CI'],
        'true',
        'bird/birdc not found, but CI must have them (Debian package bird2)',
      );
      skip = 'bird and birdc are not installed (Debian package bird2)';
      return;
    }
    dir = mkdtempSync(join(tmpdir(), 'sockopt-bird-'));
    ctl = join(dir, 'bird.ctl');
    const probe = await listen(BIRD); // a free port for BIRD on its address
    birdPort = portOf(probe);
    await new Promise((r) => probe.close(r));
    // Node listeners BIRD connects to, keyed for BIRD's address before it starts.
    const good = await listen('127.0.53.4');
    const wrong = await listen('127.0.53.5');
    servers.push(good, wrong);
    setMd5Key(good, BIRD, PASSWORD);
    setMd5Key(wrong, BIRD, 'not-the-password');
    good.on('connection', (s) => accepted.good.push(s));
    wrong.on('connection', (s) => accepted.wrong.push(s));
    const proto = (name: string, neighbor: string, extra: string) => `
protocol bgp ${name} {
  local ${BIRD} port ${birdPort} as 65053;
  neighbor ${neighbor} as 65054;
  strict bind on;
  multihop; # BIRD does not count loopback peers as directly connected
  password "${PASSWORD}";
  hold time 90;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 2;
  ${extra}
  ipv4 { import none; export none; };
}`;
    const conf = [
      'log stderr all;',
      'router id 10.53.0.1;',
      'protocol device { }',
      proto('from_node', '127.0.53.2', 'passive on;'),
      proto('from_node_wrong', '127.0.53.3', 'passive on;'),
      proto('to_node', `127.0.53.4 port ${portOf(good)}`, ''),
      proto('to_node_wrong', `127.0.53.5 port ${portOf(wrong)}`, ''),
    ].join('\n');
    writeFileSync(join(dir, 'bird.conf'), conf);
    const check = spawnSync(found.bird, ['-p', '-c', join(dir, 'bird.conf')], { encoding: 'utf8' });
    assert.equal(check.status, 0, `bird -p rejects the config: ${check.stderr}\n${conf}`);
    bird = spawn(found.bird, ['-c', join(dir, 'bird.conf'), '-s', ctl, '-P', join(dir, 'bird.pid'), '-f'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bird.stdout?.on('data', (d: Buffer) => (birdLog += d.toString()));
    bird.stderr?.on('data', (d: Buffer) => (birdLog += d.toString()));
    await waitFor('BIRD answers birdc', () => /from_node\s/.test(birdc('show', 'protocols')), 10000);
    await waitFor(
      `BIRD listens on ${BIRD}:${birdPort}`,
      () => tcpSockets().some((x) => x.state === '0A' && x.localPort === birdPort),
      10000,
    );
  });

  after(async () => {
    for (const s of [...accepted.good, ...accepted.wrong]) s.destroy();
    for (const s of servers) s.close();
    if (bird !== null && bird.exitCode === null) {
      const exited = once(bird, 'exit');
      bird.kill('SIGTERM');
      const timer = setTimeout(() => bird?.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('Node connects to BIRD with the password: OPEN, KEEPALIVE, Established', async (t) => {
    if (skip !== null) return t.skip(skip);
    const socket = await connectTcp({
      host: BIRD,
      port: birdPort,
      localAddress: '127.0.53.2',
      md5Key: PASSWORD,
      timeoutMs: OK_MS,
    });
    try {
      await bgpHandshake(socket, 65054, '10.53.0.2', 65053);
      await waitFor('from_node Established', () => protoState('from_node').includes('Established'), 5000);
    } finally {
      socket.destroy();
    }
  });

  it('a wrong or missing password never connects to BIRD', async (t) => {
    if (skip !== null) return t.skip(skip);
    for (const md5Key of ['not-the-password', undefined]) {
      await assert.rejects(
        connectTcp({ host: BIRD, port: birdPort, localAddress: '127.0.53.3', md5Key, timeoutMs: FAIL_MS }),
        ConnectTimeoutError,
      );
    }
    const state = protoState('from_node_wrong');
    assert.ok(state !== '' && !state.includes('Established'), state);
  });

  it('BIRD connects to a Node listener keyed with setMd5Key: Established', async (t) => {
    if (skip !== null) return t.skip(skip);
    await waitFor('BIRD connects to 127.0.53.4', () => accepted.good.length > 0, 10000);
    const socket = accepted.good[0]!;
    assert.equal(socket.remoteAddress, BIRD);
    await bgpHandshake(socket, 65054, '10.53.0.4', 65053);
    await waitFor('to_node Established', () => protoState('to_node').includes('Established'), 5000);
  });

  it('BIRD never gets through to a listener keyed with another password', async (t) => {
    if (skip !== null) return t.skip(skip);
    // BIRD has been retrying every 2 s since it started: give it a few attempts.
    await waitFor('to_node_wrong has tried', () => /Connect|Active/.test(protoState('to_node_wrong')), 5000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(accepted.wrong.length, 0, 'the listener accepted BIRD despite the wrong key');
    assert.ok(!protoState('to_node_wrong').includes('Established'));
  });
});
