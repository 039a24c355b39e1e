#!/usr/bin/env node
// Check captured vector files: framing of every hex message, the session
// block against the two OPENs, and the decoded UPDATEs against expect.
//   node verify.mjs [file.json ...]   (default: all of test/vectors/captured/*.json)
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, negotiate } from './describe.mjs';

const dir = new URL('../../test/vectors/captured/', import.meta.url).pathname;
const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => path.join(dir, f));

// decoded UPDATE attributes -> the shape used in expect.routes
function shape(attrs) {
  const a = { ...attrs };
  if (a.mpReach) a.mpNextHop = a.mpReach.nextHop;
  delete a.mpReach;
  delete a.mpUnreach;
  return a;
}

let failed = 0;
for (const file of files) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  const errs = [];
  const warn = [];
  // 1. framing
  doc.messages.forEach((m, i) => {
    const h = m.hex;
    if (!/^[0-9a-f]+$/.test(h) || h.length % 2) return errs.push(`#${i}: not lowercase even-length hex`);
    if (!h.startsWith('f'.repeat(32))) errs.push(`#${i}: marker is not 16 x 0xff`);
    const len = parseInt(h.slice(32, 36), 16);
    if (len !== h.length / 2) errs.push(`#${i}: length field ${len} != ${h.length / 2} bytes`);
    if (len < 19 || len > (doc.session.extendedMessage ? 65535 : 4096)) errs.push(`#${i}: bad length ${len}`);
    const type = parseInt(h.slice(36, 38), 16);
    if (type < 1 || type > 5) errs.push(`#${i}: bad type ${type}`);
    if (!['peer-to-us', 'us-to-peer'].includes(m.dir)) errs.push(`#${i}: bad dir`);
  });
  const msgs = doc.messages.map((m) => ({ ...m, buf: Buffer.from(m.hex, 'hex') }));
  // 2. session
  const ourOpen = msgs.find((m) => m.dir === 'us-to-peer' && m.buf[18] === 1);
  const peerOpen = msgs.find((m) => m.dir === 'peer-to-us' && m.buf[18] === 1);
  if (!ourOpen || !peerOpen) errs.push('missing an OPEN');
  const ctx = negotiate(describe(ourOpen.buf).caps, describe(peerOpen.buf).caps);
  const session = {
    as4: ctx.as4,
    addPath: [...ctx.addPath],
    extendedMessage: ctx.extMsg,
    ...(ctx.extNh.length ? { extendedNextHop: ctx.extNh } : {}),
  };
  if (!isDeepStrictEqual(session, doc.session))
    errs.push(`session ${JSON.stringify(doc.session)} != negotiated ${JSON.stringify(session)}`);
  // 3. UPDATEs against expect
  const seen = { ipv4: new Set(), ipv6: new Set() };
  const routes = doc.expect.routes ?? {};
  const matched = new Map(); // prefix -> Set of variant indexes matched
  for (const m of msgs.filter((x) => x.dir === 'peer-to-us' && x.buf[18] === 2)) {
    let d;
    try {
      d = describe(m.buf, ctx);
    } catch (e) {
      errs.push(`cannot decode UPDATE ${m.hex.slice(32, 48)}...: ${e.message}`);
      continue;
    }
    if (d.eor) continue;
    if (d.withdrawn.length) warn.push(`withdrawals: ${d.withdrawn.map((w) => w.prefix).join(', ')}`);
    for (const { prefix } of d.announced) {
      seen[prefix.includes(':') ? 'ipv6' : 'ipv4'].add(prefix);
      if (!doc.expect.routes) continue;
      const want = routes[prefix];
      if (!want) {
        errs.push(`unexpected prefix ${prefix}`);
        continue;
      }
      const variants = Array.isArray(want) ? want : [want];
      const got = shape(d.attrs);
      const k = variants.findIndex((v) => isDeepStrictEqual(v, got));
      if (k < 0) errs.push(`${prefix}: attributes ${JSON.stringify(got)} match no expectation`);
      else (matched.get(prefix) ?? matched.set(prefix, new Set()).get(prefix)).add(k);
    }
  }
  for (const fam of ['ipv4', 'ipv6']) {
    const want = [...new Set(doc.expect.announced?.[fam] ?? [])].sort();
    const got = [...seen[fam]].sort();
    if (!isDeepStrictEqual(want, got))
      errs.push(`${fam} announced ${JSON.stringify(got)} != expected ${JSON.stringify(want)}`);
  }
  for (const [prefix, want] of Object.entries(routes))
    if (Array.isArray(want) && (matched.get(prefix)?.size ?? 0) !== want.length)
      errs.push(
        `${prefix}: expected ${want.length} distinct paths, matched ${matched.get(prefix)?.size ?? 0}`,
      );
  const last = msgs.at(-1);
  if (!(last.dir === 'peer-to-us' && last.buf[18] === 3))
    warn.push('does not end with a NOTIFICATION from the peer');
  const name = path.basename(file);
  if (errs.length) {
    failed++;
    console.log(`FAIL ${name}\n  ${errs.join('\n  ')}`);
  } else console.log(`ok   ${name} (${msgs.length} messages)`);
  for (const w of new Set(warn)) console.log(`     note: ${w}`);
}
process.exit(failed ? 1 : 0);
