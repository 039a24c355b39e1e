#!/usr/bin/env node
// Minimal raw BGP speaker that records every message a real daemon sends.
// No dependencies; does not use the bgp-ts codec. See README.md.
//
//   node capture.mjs --connect 127.0.0.2:17900 --local 127.0.0.1 \
//     --as 65001 --id 10.255.0.1 --caps mp4,mp6,rr,err,as4,gr,extmsg \
//     --refresh ipv4,ipv6 --shutdown 'birdc -s /tmp/x.ctl disable h1 "bye"' \
//     --meta meta/bird-as4.json --source 'BIRD 2.0.12 (...)' --out out.json
import net from 'node:net';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { MARKER, describe, family, negotiate } from './describe.mjs';

// ---- options -------------------------------------------------------------
const opt = {
  as: '65001',
  id: '10.255.0.1',
  hold: '90',
  caps: 'mp4,mp6,rr,err,as4,gr',
  refresh: '',
  'max-time': '60',
};
for (let i = 2; i < process.argv.length; i += 2)
  opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const caps = new Set(opt.caps.split(',').filter(Boolean));
const myAs = Number(opt.as);
const log = (...a) => console.error(`[capture +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const t0 = Date.now();

// ---- our OPEN, assembled by hand ------------------------------------------
function message(type, body) {
  const len = Buffer.alloc(3);
  len.writeUInt16BE(19 + body.length, 0);
  len[2] = type;
  return Buffer.concat([MARKER, len, body]);
}
const cap = (code, bytes = []) => Buffer.from([code, bytes.length, ...bytes]);
function buildOpen() {
  const c = [];
  if (caps.has('mp4')) c.push(cap(1, [0, 1, 0, 1]));
  if (caps.has('mp6')) c.push(cap(1, [0, 2, 0, 1]));
  if (caps.has('rr')) c.push(cap(2));
  if (caps.has('err')) c.push(cap(70));
  if (caps.has('extmsg')) c.push(cap(6));
  if (caps.has('extnh4')) c.push(cap(5, [0, 1, 0, 1, 0, 2])); // IPv4 unicast NLRI with IPv6 next hop
  if (caps.has('as4'))
    c.push(cap(65, [(myAs >>> 24) & 255, (myAs >>> 16) & 255, (myAs >>> 8) & 255, myAs & 255]));
  if (caps.has('gr')) {
    const fams = [];
    if (caps.has('mp4')) fams.push(0, 1, 1, 0); // AFI 1 SAFI 1, F bit clear
    if (caps.has('mp6')) fams.push(0, 2, 1, 0);
    c.push(cap(64, [0x00, 120, ...fams])); // no R bit, restart time 120 s
  }
  const ap = [];
  if (caps.has('addpath4')) ap.push(0, 1, 1, 1); // AFI 1 SAFI 1, receive
  if (caps.has('addpath6')) ap.push(0, 2, 1, 1);
  if (ap.length) c.push(cap(69, ap));
  const capBytes = Buffer.concat(c);
  const params = Buffer.concat([Buffer.from([2, capBytes.length]), capBytes]); // one parameter holding all caps
  const body = Buffer.alloc(10);
  body[0] = 4;
  body.writeUInt16BE(myAs > 65535 ? 23456 : myAs, 1);
  body.writeUInt16BE(Number(opt.hold), 3);
  opt.id.split('.').forEach((o, i) => (body[5 + i] = Number(o)));
  body[9] = params.length;
  return message(1, Buffer.concat([body, params]));
}
const KEEPALIVE = message(4, Buffer.alloc(0));
const routeRefresh = (afi, safi) => message(5, Buffer.from([0, afi, 0, safi]));

// ---- recording --------------------------------------------------------------
const records = [];
const ctx = { as4: false, addPath: new Set(), extMsg: false, extNh: [] };
let peerOpen = null;
let seenKeepalive = false;
function record(dir, msg) {
  const d = describe(msg, ctx);
  if (d.type === 4) {
    if (seenKeepalive) return d;
    seenKeepalive = true;
    d.note = 'KEEPALIVE (later identical KEEPALIVEs omitted)';
  }
  records.push({ dir, hex: msg.toString('hex'), note: d.note });
  log(dir, d.note.slice(0, 200));
  return d;
}

// ---- session -----------------------------------------------------------------
let sock;
let buf = Buffer.alloc(0);
let lastRx = Date.now();
const queue = []; // received message descriptions not yet looked at by waitFor()
let wake = () => {};
const notify = (d) => {
  if (d) queue.push(d);
  wake();
};
// next queued message, or null after ms milliseconds
const nextMsg = (ms) =>
  queue.length
    ? Promise.resolve(queue.shift())
    : new Promise((res) => {
        const t = setTimeout(() => {
          wake = () => {};
          res(null);
        }, ms);
        wake = () => {
          wake = () => {};
          clearTimeout(t);
          res(queue.shift() ?? null);
        };
      });
let closed = false;

function send(msg, rec) {
  if (closed) return;
  if (rec) record('us-to-peer', msg);
  sock.write(msg);
}

function onData(chunk) {
  buf = Buffer.concat([buf, chunk]);
  while (buf.length >= 19) {
    if (!buf.subarray(0, 16).equals(MARKER))
      throw new Error(`bad marker: ${buf.subarray(0, 19).toString('hex')}`);
    const len = buf.readUInt16BE(16);
    if (buf.length < len) break;
    const msg = Buffer.from(buf.subarray(0, len));
    buf = buf.subarray(len);
    lastRx = Date.now();
    if (msg[18] === 1) {
      peerOpen = describe(msg);
      Object.assign(ctx, negotiate(describe(buildOpen()).caps, peerOpen.caps));
    }
    const d = record('peer-to-us', msg);
    if (msg[18] === 1) send(KEEPALIVE);
    notify(d);
  }
}

async function connectOrListen() {
  if (opt.listen) {
    const [host, port] = splitHostPort(opt.listen);
    return new Promise((res) => {
      const srv = net.createServer((s) => {
        srv.close();
        res(s);
      });
      srv.listen(port, host, () => log(`listening on ${opt.listen}`));
    });
  }
  const [host, port] = splitHostPort(opt.connect);
  for (;;) {
    try {
      return await new Promise((res, rej) => {
        const s = net.connect({ host, port, localAddress: opt.local }, () => res(s));
        s.once('error', rej);
      });
    } catch (e) {
      log(`connect ${opt.connect}: ${e.code}; retrying`);
      await sleep(1000);
    }
  }
}
function splitHostPort(s) {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until pred(d) is true for a received message, or until quietMs pass with no message
// after pred became unnecessary, or until maxMs.
async function waitFor(pred, maxMs, quietMs = 1500) {
  const end = Date.now() + maxMs;
  let done = false;
  while (!closed && Date.now() < end) {
    const d = await nextMsg(250);
    if (d && pred(d)) done = true;
    if (d && d.type === 3) return 'notification';
    if (done && Date.now() - lastRx >= quietMs) return 'ok';
  }
  return closed ? 'closed' : done ? 'ok' : 'timeout';
}

async function main() {
  const deadline = setTimeout(
    () => {
      log('max-time reached');
      finish(1);
    },
    Number(opt['max-time']) * 1000,
  );
  sock = await connectOrListen();
  log(`TCP up ${sock.localAddress}:${sock.localPort} <-> ${sock.remoteAddress}:${sock.remotePort}`);
  sock.on('data', (c) => {
    try {
      onData(c);
    } catch (e) {
      log(e.message);
      finish(1);
    }
  });
  sock.on('close', () => {
    closed = true;
    log('TCP closed');
    notify(null);
  });
  sock.on('error', (e) => log(`socket error ${e.code}`));
  send(buildOpen(), true);
  const ka = setInterval(() => send(KEEPALIVE), (Number(opt.hold) / 3) * 1000);

  // 1. Established + initial table transfer: wait for End-of-RIB on every negotiated family.
  const pendingEor = () => new Set(ctx.families ?? ['?']);
  let eorLeft = null;
  let r = await waitFor(
    (d) => {
      if (d.type === 1) eorLeft = pendingEor();
      if (d.eor && eorLeft) eorLeft.delete(d.eor);
      return eorLeft && eorLeft.size === 0;
    },
    25000,
    2000,
  );
  log(`initial transfer: ${r}${eorLeft?.size ? ` (no EoR for ${[...eorLeft]})` : ''}`);

  // 2. Optional ROUTE-REFRESH per family, then wait for EoRR (enhanced) or quiet.
  for (const f of opt.refresh.split(',').filter(Boolean)) {
    if (closed || r === 'notification') break;
    const afi = f === 'ipv6' ? 2 : 1;
    send(routeRefresh(afi, 1), true);
    r = await waitFor(
      (d) => !ctx.enhancedRR || (d.refresh && d.refresh.subtype === 2 && d.refresh.fam === family(afi, 1)),
      10000,
      2000,
    );
    log(`refresh ${f}: ${r}`);
  }

  // 3. Make the daemon shut the session down with a NOTIFICATION.
  if (opt.shutdown && !closed && r !== 'notification') {
    log(`running: ${opt.shutdown}`);
    spawn('sh', ['-c', opt.shutdown], { stdio: ['ignore', 'inherit', 'inherit'] });
    r = await waitFor((d) => d.type === 3, 15000, 0);
    log(`shutdown: ${r}`);
    await sleep(500);
  }
  clearInterval(ka);
  clearTimeout(deadline);
  finish(0);
}

let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  const meta = opt.meta && fs.existsSync(opt.meta) ? JSON.parse(fs.readFileSync(opt.meta, 'utf8')) : {};
  if (opt.meta && !fs.existsSync(opt.meta)) log(`warning: no meta file ${opt.meta}`);
  const date = new Date().toISOString().slice(0, 10);
  const out = {
    source: `${opt.source ?? 'unknown daemon'}, captured ${date} on loopback`,
    scenario: meta.scenario ?? '',
    config: meta.config ?? '',
    session: {
      as4: ctx.as4,
      addPath: [...ctx.addPath],
      extendedMessage: ctx.extMsg,
      ...(ctx.extNh.length ? { extendedNextHop: ctx.extNh } : {}),
    },
    messages: records,
    expect: meta.expect ?? {},
  };
  // a failed run must not overwrite a good vector file
  if (opt.out && code === 0) fs.writeFileSync(opt.out, JSON.stringify(out, null, 2) + '\n');
  log(
    `${code === 0 && opt.out ? 'wrote' : 'did not write'} ${records.length} messages to ${opt.out ?? '(nowhere)'}`,
  );
  sock?.destroy();
  process.exit(code);
}

main().catch((e) => {
  log(e.stack);
  finish(1);
});
