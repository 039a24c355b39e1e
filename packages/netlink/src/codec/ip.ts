// IP and MAC address text <-> wire bytes, written straight into a Buffer (no intermediate
// arrays on the encode path). IPv6 text out is RFC 5952 canonical, as `ip` prints it.

export type IpVersion = 4 | 6;

/** The version of an address's text form: 6 when it has a colon, else 4 (validated on write). */
export function ipVersionOf(text: string): IpVersion {
  return text.includes(':') ? 6 : 4;
}

/** Writes a dotted-quad IPv4 address at off (4 bytes); throws TypeError on bad text. */
export function writeIpv4(buf: Buffer, off: number, text: string): void {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; /* '.' ends the last part */
    if (c >= 48 && c <= 57) {
      // a leading zero followed by more digits is ambiguous (octal in inet_aton): refuse it
      if (digits > 0 && value === 0) throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
      value = value * 10 + (c - 48);
      digits++;
      if (value > 255) throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
    } else if (c === 46 && digits > 0 && part < 4) {
      buf[off + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else {
      throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
    }
  }
  if (part !== 4) throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
}

/**
 * A dotted-quad IPv4 address as an unsigned 32-bit number, or -1 when the text is not one
 * (the same text writeIpv4 accepts: four parts of 0-255, no leading zeros).
 */
export function ipv4Value(text: string): number {
  let value = 0;
  let part = 0;
  let parts = 0;
  let digits = 0;
  const n = text.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else if (c === 46 && digits > 0 && parts < 4) {
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else return -1;
  }
  return parts === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Writes an IPv6 address (with optional embedded IPv4 tail) at off (16 bytes). */
export function writeIpv6(buf: Buffer, off: number, text: string): void {
  const bad = (): TypeError => new TypeError(`invalid IPv6 address ${JSON.stringify(text)}`);
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  const n = text.length;
  if (n < 2) throw bad();
  if (text.startsWith('::')) {
    gap = 0;
    i = 2;
  } else if (text.charCodeAt(0) === 58) throw bad();
  while (i < n) {
    // an IPv4 tail: the last group has a dot
    const rest = text.slice(i);
    if (rest.includes('.') && !rest.includes(':')) {
      const v4 = Buffer.allocUnsafe(4);
      writeIpv4(v4, 0, rest);
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      break;
    }
    let value = 0;
    let digits = 0;
    while (i < n && text.charCodeAt(i) !== 58) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0 || digits === 4) throw bad();
      value = (value << 4) | h;
      digits++;
      i++;
    }
    if (digits === 0) throw bad();
    groups.push(value);
    if (i < n) {
      i++; // ':'
      if (i < n && text.charCodeAt(i) === 58) {
        if (gap >= 0) throw bad();
        gap = groups.length;
        i++;
      } else if (i === n) throw bad();
    }
  }
  if (groups.length > 8 || (gap < 0 && groups.length !== 8) || (gap >= 0 && groups.length > 7)) throw bad();
  const missing = 8 - groups.length;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    const v = gap >= 0 && k >= gap && k < gap + missing ? 0 : groups[g++]!;
    buf[off + 2 * k] = v >> 8;
    buf[off + 2 * k + 1] = v & 0xff;
  }
}

/** Writes an address of the given version at off; returns its length (4 or 16). */
export function writeIp(buf: Buffer, off: number, version: IpVersion, text: string): number {
  if (version === 4) {
    writeIpv4(buf, off, text);
    return 4;
  }
  writeIpv6(buf, off, text);
  return 16;
}

export function formatIpv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export function formatIpv6(buf: Buffer, off: number): string {
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::', the first if tied;
  // ::ffff:a.b.c.d keeps its dotted tail as inet_ntop prints it.
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let k = 0; k <= 8; k++) {
    const zero = k < 8 && buf[off + 2 * k] === 0 && buf[off + 2 * k + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = k;
    } else if (runStart >= 0) {
      if (k - runStart > bestLen) {
        bestStart = runStart;
        bestLen = k - runStart;
      }
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  if (bestStart === 0 && bestLen === 5 && buf[off + 10] === 0xff && buf[off + 11] === 0xff)
    return `::ffff:${formatIpv4(buf, off + 12)}`;
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      out += '::';
      k += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += ((buf[off + 2 * k]! << 8) | buf[off + 2 * k + 1]!).toString(16);
  }
  return out;
}

/** Formats 4 or 16 bytes; other lengths give undefined (the caller reports the malformed attribute). */
export function formatIp(buf: Buffer, off: number, len: number): string | undefined {
  if (len === 4) return formatIpv4(buf, off);
  if (len === 16) return formatIpv6(buf, off);
  return undefined;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Link-layer address bytes as aa:bb:cc:... */
export function formatMac(buf: Buffer, off: number, len: number): string {
  let out = '';
  for (let i = 0; i < len; i++) out += (i === 0 ? '' : ':') + HEX[buf[off + i]!]!;
  return out;
}

/** aa:bb:cc:dd:ee:ff (any length of colon-separated hex bytes) into bytes at off; returns the length. */
export function writeMac(buf: Buffer, off: number, text: string): number {
  const parts = text.split(':');
  if (parts.length < 1 || parts.length > 32)
    throw new TypeError(`invalid link-layer address ${JSON.stringify(text)}`);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (!/^[0-9a-fA-F]{1,2}$/.test(p))
      throw new TypeError(`invalid link-layer address ${JSON.stringify(text)}`);
    buf[off + i] = parseInt(p, 16);
  }
  return parts.length;
}

export function macLength(text: string): number {
  return text.split(':').length;
}
