// Tiny, deliberately independent BGP message describer used only to write the
// human-readable "note" of each captured message and to cross-check captures.
// It is NOT the bgp-ts codec and must not import it.

const TYPES = { 1: 'OPEN', 2: 'UPDATE', 3: 'NOTIFICATION', 4: 'KEEPALIVE', 5: 'ROUTE-REFRESH' };
const CAPS = {
  1: 'MP',
  2: 'ROUTE-REFRESH',
  5: 'EXTENDED-NEXT-HOP',
  6: 'EXTENDED-MESSAGE',
  9: 'BGP-ROLE',
  64: 'GRACEFUL-RESTART',
  65: 'AS4',
  69: 'ADD-PATH',
  70: 'ENHANCED-ROUTE-REFRESH',
  71: 'LLGR',
  73: 'FQDN',
  74: 'SOFTWARE-VERSION',
  128: 'ROUTE-REFRESH-OLD-CISCO',
};
const ATTRS = {
  1: 'ORIGIN',
  2: 'AS_PATH',
  3: 'NEXT_HOP',
  4: 'MED',
  5: 'LOCAL_PREF',
  6: 'ATOMIC_AGGREGATE',
  7: 'AGGREGATOR',
  8: 'COMMUNITIES',
  9: 'ORIGINATOR_ID',
  10: 'CLUSTER_LIST',
  14: 'MP_REACH_NLRI',
  15: 'MP_UNREACH_NLRI',
  16: 'EXTENDED_COMMUNITIES',
  17: 'AS4_PATH',
  18: 'AS4_AGGREGATOR',
  26: 'AIGP',
  32: 'LARGE_COMMUNITIES',
  35: 'OTC',
};

export const MARKER = Buffer.alloc(16, 0xff);

export function family(afi, safi) {
  if (afi === 1 && safi === 1) return 'ipv4-unicast';
  if (afi === 2 && safi === 1) return 'ipv6-unicast';
  return `afi${afi}/safi${safi}`;
}

const ip4 = (b) => [...b].join('.');
function ip6(b) {
  const w = [];
  for (let i = 0; i < 16; i += 2) w.push(b.readUInt16BE(i).toString(16));
  // compress the longest run of zero words
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    if (w[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === '0') j++;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
    i = j;
  }
  if (best[0] < 0) return w.join(':');
  return `${w.slice(0, best[0]).join(':')}::${w.slice(best[0] + best[1]).join(':')}`;
}

/** Decode a list of (optionally add-path) prefixes of one address family. */
export function prefixes(buf, afi, addPath) {
  const out = [];
  let p = 0;
  while (p < buf.length) {
    let pathId = null;
    if (addPath) {
      pathId = buf.readUInt32BE(p);
      p += 4;
    }
    const len = buf[p++];
    const n = Math.ceil(len / 8);
    const raw = Buffer.alloc(afi === 1 ? 4 : 16);
    buf.copy(raw, 0, p, p + n);
    p += n;
    const prefix = `${afi === 1 ? ip4(raw) : ip6(raw)}/${len}`;
    out.push(pathId === null ? { prefix } : { prefix, pathId });
  }
  return out;
}

// AS path as a flat array of ASNs for AS_SEQUENCE segments; other segment
// types become { type, asns } objects (none occur in these captures).
function asPath(v, asSize) {
  const out = [];
  for (let p = 0; p < v.length;) {
    const t = v[p];
    const n = v[p + 1];
    p += 2;
    const asns = [];
    for (let i = 0; i < n; i++, p += asSize) asns.push(asSize === 4 ? v.readUInt32BE(p) : v.readUInt16BE(p));
    if (t === 2) out.push(...asns);
    else out.push({ type: t === 1 ? 'AS_SET' : t, asns });
  }
  return out;
}

function nextHop(nh) {
  if (nh.length === 4) return ip4(nh);
  if (nh.length === 16) return ip6(nh);
  if (nh.length === 32) return `${ip6(nh.subarray(0, 16))} + link-local ${ip6(nh.subarray(16))}`;
  return `0x${nh.toString('hex')}`;
}

function extCommunity(e) {
  const hi = e[0],
    lo = e[1];
  const sub = lo === 2 ? 'rt' : lo === 3 ? 'ro' : `sub${lo}`;
  if (hi === 0x00 || hi === 0x40) return `${sub} ${e.readUInt16BE(2)}:${e.readUInt32BE(4)}`;
  if (hi === 0x01 || hi === 0x41) return `${sub} ${ip4(e.subarray(2, 6))}:${e.readUInt16BE(6)}`;
  if (hi === 0x02 || hi === 0x42) return `${sub} ${e.readUInt32BE(2)}:${e.readUInt16BE(6)} (4-octet AS)`;
  return `0x${e.toString('hex')}`;
}

/**
 * Describe one whole message. ctx = { as4: bool, addPath: Set<family> } for UPDATE decoding.
 * Returns { note, type, eor?: family, announced?: string[], refresh?: {fam, subtype} }.
 */
export function describe(msg, ctx = { as4: true, addPath: new Set() }) {
  const type = msg[18];
  const body = msg.subarray(19);
  const r = { type, note: TYPES[type] ?? `type ${type}` };
  if (type === 1) {
    const parts = [
      `OPEN v${body[0]} AS ${body.readUInt16BE(1)} hold ${body.readUInt16BE(3)} id ${ip4(body.subarray(5, 9))}`,
    ];
    let optLen = body[9],
      p = 10,
      ext = false;
    if (optLen === 255 && body[10] === 255) {
      ext = true;
      optLen = body.readUInt16BE(11);
      p = 13;
    } // RFC 9072
    const end = p + optLen;
    const params = [];
    r.caps = [];
    while (p < end) {
      const ptype = body[p];
      const plen = ext ? body.readUInt16BE(p + 1) : body[p + 1];
      p += ext ? 3 : 2;
      const pv = body.subarray(p, p + plen);
      p += plen;
      if (ptype !== 2) {
        params.push(`param${ptype}(${pv.toString('hex')})`);
        continue;
      }
      const caps = [];
      for (let q = 0; q < pv.length;) {
        const code = pv[q],
          len = pv[q + 1],
          v = pv.subarray(q + 2, q + 2 + len);
        q += 2 + len;
        r.caps.push({ code, v });
        let s = CAPS[code] ?? `cap${code}`;
        if (code === 1) s += ` ${family(v.readUInt16BE(0), v[3])}`;
        else if (code === 65) s += ` ${v.readUInt32BE(0)}`;
        else if (code === 64) {
          const f = [];
          for (let i = 2; i < v.length; i += 4)
            f.push(`${family(v.readUInt16BE(i), v[i + 2])} flags 0x${v[i + 3].toString(16)}`);
          s += ` restart-flags 0x${(v[0] >> 4).toString(16)} time ${v.readUInt16BE(0) & 0xfff}${f.length ? ` [${f.join(', ')}]` : ''}`;
        } else if (code === 69) {
          const f = [];
          for (let i = 0; i < v.length; i += 4)
            f.push(
              `${family(v.readUInt16BE(i), v[i + 2])} ${['?', 'receive', 'send', 'send+receive'][v[i + 3]]}`,
            );
          s += ` [${f.join(', ')}]`;
        } else if (code === 5) {
          const f = [];
          for (let i = 0; i < v.length; i += 6)
            f.push(`${family(v.readUInt16BE(i), v.readUInt16BE(i + 2))} nh-afi ${v.readUInt16BE(i + 4)}`);
          s += ` [${f.join(', ')}]`;
        } else if (code === 73) {
          const hl = v[0];
          s += ` host "${v.subarray(1, 1 + hl)}" domain "${v.subarray(2 + hl, 2 + hl + v[1 + hl])}"`;
        } else if (len) s += ` 0x${v.toString('hex')}`;
        caps.push(s);
      }
      params.push(`cap-param[${caps.join('; ')}]`);
    }
    r.note = `${parts[0]}; ${params.length} optional parameter(s)${ext ? ' (RFC 9072 extended)' : ''}: ${params.join(' ')}`;
  } else if (type === 3) {
    const code = body[0],
      sub = body[1],
      data = body.subarray(2);
    const names = {
      1: 'Message Header Error',
      2: 'OPEN Message Error',
      3: 'UPDATE Message Error',
      4: 'Hold Timer Expired',
      5: 'FSM Error',
      6: 'Cease',
    };
    r.note = `NOTIFICATION ${code}/${sub} (${names[code] ?? '?'})`;
    if (code === 6 && (sub === 2 || sub === 4) && data.length) {
      r.note += ` shutdown communication len ${data[0]} "${data.subarray(1, 1 + data[0]).toString('utf8')}"`;
      if (data.length > 1 + data[0]) r.note += ` + trailing 0x${data.subarray(1 + data[0]).toString('hex')}`;
    } else if (data.length) r.note += ` data 0x${data.toString('hex')}`;
  } else if (type === 5) {
    const fam = family(body.readUInt16BE(0), body[3]);
    const subtype = body[2];
    r.refresh = { fam, subtype };
    r.note = `ROUTE-REFRESH ${fam}${subtype ? ` subtype ${subtype} (${subtype === 1 ? 'BoRR' : subtype === 2 ? 'EoRR' : '?'})` : ''}`;
  } else if (type === 2) {
    Object.assign(r, update(body, ctx));
    if (r.eor) r.note = `UPDATE End-of-RIB ${r.eor}`;
    else {
      const list = (a) =>
        a.map((x) => (x.pathId === undefined ? x.prefix : `${x.prefix} (path ${x.pathId})`)).join(', ');
      r.note = `UPDATE${r.announced.length ? ` announce ${list(r.announced)}` : ''}${r.withdrawn.length ? ` withdraw ${list(r.withdrawn)}` : ''}`;
      if (r.attrOrder.length)
        r.note += `; attrs ${r.attrOrder.map((n) => attrText(n, r.attrs, r.attrFlags[n])).join(' ')}`;
    }
  }
  return r;
}

// Names used in expect.routes (see test/vectors/captured/README.md)
const KEYS = {
  1: 'origin',
  2: 'asPath',
  3: 'nextHop',
  4: 'med',
  5: 'localPref',
  6: 'atomicAggregate',
  7: 'aggregator',
  8: 'communities',
  9: 'originatorId',
  10: 'clusterList',
  14: 'mpReach',
  15: 'mpUnreach',
  16: 'extendedCommunities',
  17: 'as4Path',
  18: 'as4Aggregator',
  32: 'largeCommunities',
};
const CODE = Object.fromEntries(Object.entries(KEYS).map(([code, name]) => [name, code]));

/** Decode an UPDATE body into structured form. */
export function update(body, ctx) {
  const wl = body.readUInt16BE(0);
  const withdrawn = body.subarray(2, 2 + wl);
  const al = body.readUInt16BE(2 + wl);
  const raw = body.subarray(4 + wl, 4 + wl + al);
  const nlri = body.subarray(4 + wl + al);
  const v4ap = ctx.addPath.has('ipv4-unicast');
  if (!wl && !al && !nlri.length) return { eor: 'ipv4-unicast' };
  const r = {
    announced: [],
    withdrawn: prefixes(withdrawn, 1, v4ap),
    attrs: {},
    attrOrder: [],
    attrFlags: {},
  };
  for (let p = 0; p < raw.length;) {
    const flags = raw[p],
      code = raw[p + 1];
    const extLen = flags & 0x10;
    const len = extLen ? raw.readUInt16BE(p + 2) : raw[p + 2];
    p += extLen ? 4 : 3;
    const v = raw.subarray(p, p + len);
    p += len;
    const k = KEYS[code] ?? `attr${code}`;
    r.attrOrder.push(k);
    r.attrFlags[k] = flags;
    const a = r.attrs;
    if (code === 1) a.origin = ['igp', 'egp', 'incomplete'][v[0]] ?? v[0];
    else if (code === 2) a.asPath = asPath(v, ctx.as4 ? 4 : 2);
    else if (code === 17) a.as4Path = asPath(v, 4);
    else if (code === 3) a.nextHop = ip4(v);
    else if (code === 4) a.med = v.readUInt32BE(0);
    else if (code === 5) a.localPref = v.readUInt32BE(0);
    else if (code === 6) a.atomicAggregate = true;
    else if (code === 7 || code === 18) {
      const four = code === 18 || v.length === 8;
      a[k] = { as: four ? v.readUInt32BE(0) : v.readUInt16BE(0), id: ip4(v.subarray(four ? 4 : 2)) };
    } else if (code === 8) {
      a.communities = [];
      for (let i = 0; i < v.length; i += 4)
        a.communities.push(`${v.readUInt16BE(i)}:${v.readUInt16BE(i + 2)}`);
    } else if (code === 32) {
      a.largeCommunities = [];
      for (let i = 0; i < v.length; i += 12)
        a.largeCommunities.push(`${v.readUInt32BE(i)}:${v.readUInt32BE(i + 4)}:${v.readUInt32BE(i + 8)}`);
    } else if (code === 16) {
      a.extendedCommunities = [];
      for (let i = 0; i < v.length; i += 8) a.extendedCommunities.push(extCommunity(v.subarray(i, i + 8)));
    } else if (code === 9) a.originatorId = ip4(v);
    else if (code === 10) {
      a.clusterList = [];
      for (let i = 0; i < v.length; i += 4) a.clusterList.push(ip4(v.subarray(i, i + 4)));
    } else if (code === 14) {
      const afi = v.readUInt16BE(0),
        safi = v[2],
        nhl = v[3];
      const fam = family(afi, safi);
      const list = prefixes(v.subarray(5 + nhl), afi, ctx.addPath.has(fam));
      a.mpReach = { family: fam, nextHop: nextHop(v.subarray(4, 4 + nhl)), nlri: list.length };
      if (v[4 + nhl]) a.mpReach.reserved = v[4 + nhl];
      r.announced.push(...list);
    } else if (code === 15) {
      const afi = v.readUInt16BE(0),
        safi = v[2];
      const fam = family(afi, safi);
      const list = prefixes(v.subarray(3), afi, ctx.addPath.has(fam));
      a.mpUnreach = { family: fam, nlri: list.length };
      r.withdrawn.push(...list);
      if (!list.length && !wl && !nlri.length && raw.length === p && r.attrOrder.length === 1)
        return { eor: fam };
    } else a[k] = v.toString('hex');
  }
  r.announced.push(...prefixes(nlri, 1, v4ap));
  return r;
}

function attrText(k, a, flags) {
  const odd = [];
  if (flags & 0x10) odd.push('ext-len');
  if (flags & 0x20) odd.push('partial');
  let s = ATTRS[CODE[k]] ?? k;
  if (odd.length) s += `<${odd.join(',')}>`;
  const v = a[k];
  if (k === 'mpReach')
    return `${s}(${v.family} nh ${v.nextHop}${v.reserved ? ` reserved=${v.reserved}` : ''}, ${v.nlri} nlri)`;
  if (k === 'mpUnreach') return `${s}(${v.family}, ${v.nlri} nlri)`;
  if (k === 'asPath' || k === 'as4Path')
    return `${s}=[${v.map((x) => (typeof x === 'number' ? x : `${x.type}{${x.asns.join(',')}}`)).join(' ')}]`;
  if (k === 'aggregator' || k === 'as4Aggregator') return `${s}=${v.as} ${v.id}`;
  if (k === 'origin') return `${s}=${String(v).toUpperCase()}`;
  if (v === true) return s;
  return `${s}=${Array.isArray(v) ? v.join(',') : v}`;
}

/** What two OPENs' capability lists (from describe().caps) negotiate, seen from "mine". */
export function negotiate(mine, peer) {
  const has = (list, code) => list.some((c) => c.code === code);
  // families for which a side set the given ADD-PATH bit (1 receive, 2 send)
  const apFams = (list, bit) => {
    const s = new Set();
    for (const c of list.filter((x) => x.code === 69))
      for (let i = 0; i < c.v.length; i += 4)
        if (c.v[i + 3] & bit) s.add(family(c.v.readUInt16BE(i), c.v[i + 2]));
    return s;
  };
  const weRecv = apFams(mine, 1);
  // RFC 8950 tuples (NLRI AFI/SAFI, next-hop AFI) both sides advertise
  const enh = (list) => {
    const s = new Set();
    for (const c of list.filter((x) => x.code === 5))
      for (let i = 0; i < c.v.length; i += 6)
        s.add(`${family(c.v.readUInt16BE(i), c.v.readUInt16BE(i + 2))}/${c.v.readUInt16BE(i + 4)}`);
    return s;
  };
  const peerEnh = enh(peer);
  const mp = (list) =>
    new Set(list.filter((c) => c.code === 1).map((c) => family(c.v.readUInt16BE(0), c.v[3])));
  const pm = mp(peer),
    mm = mp(mine);
  return {
    as4: has(mine, 65) && has(peer, 65),
    extMsg: has(mine, 6) && has(peer, 6),
    addPath: new Set([...apFams(peer, 2)].filter((f) => weRecv.has(f))),
    extNh: [...enh(mine)].filter((t) => peerEnh.has(t) && t.endsWith('/2')).map((t) => t.slice(0, -2)),
    families: !pm.size && !mm.size ? ['ipv4-unicast'] : [...mm].filter((f) => pm.has(f)),
    enhancedRR: has(mine, 70) && has(peer, 70),
  };
}
