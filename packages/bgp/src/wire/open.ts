// OPEN (RFC 4271 §4.2) with Capabilities (RFC 5492) and RFC 9072 extended
// optional parameters length.

import { Reader, Writer } from './buffer.js';
import { OpenSubcode, UNSPECIFIC, openError } from './errors.js';
import { MessageType } from './framer.js';
import { writeHeader, patchLength } from './header.js';
import type { Asn } from './types.js';
import { AS_TRANS, formatIpv4, ipv4OrThrow } from './types.js';

/** IANA "Capability Codes". */
export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  ExtendedNextHop: 5,
  ExtendedMessage: 6,
  GracefulRestart: 64,
  FourOctetAs: 65,
  AddPath: 69,
  EnhancedRouteRefresh: 70,
  Fqdn: 73,
} as const;

export type AddPathMode = 'receive' | 'send' | 'both';
const ADD_PATH_MODES: readonly AddPathMode[] = ['receive', 'send', 'both']; // wire values 1, 2, 3

export interface GracefulRestartFamily {
  readonly afi: number;
  readonly safi: number;
  /** RFC 4724 §3: the F bit, forwarding state preserved. */
  readonly forwardingPreserved: boolean;
}

export type Capability =
  | { readonly kind: 'multiprotocol'; readonly afi: number; readonly safi: number }
  | { readonly kind: 'routeRefresh' }
  | { readonly kind: 'enhancedRouteRefresh' }
  | { readonly kind: 'fourOctetAs'; readonly asn: Asn }
  | {
      readonly kind: 'gracefulRestart';
      /** RFC 4724 §3: the R bit. */
      readonly restarting: boolean;
      /** RFC 8538 §2: the N bit, graceful restart also for NOTIFICATIONs. */
      readonly notification: boolean;
      /** Seconds, 0..4095. */
      readonly restartTime: number;
      readonly families: readonly GracefulRestartFamily[];
    }
  | {
      readonly kind: 'addPath';
      readonly families: readonly {
        readonly afi: number;
        readonly safi: number;
        readonly mode: AddPathMode;
      }[];
    }
  | { readonly kind: 'extendedMessage' }
  | {
      readonly kind: 'extendedNextHop';
      readonly families: readonly {
        readonly afi: number;
        readonly safi: number;
        readonly nextHopAfi: number;
      }[];
    }
  | { readonly kind: 'fqdn'; readonly hostname: string; readonly domainName: string }
  | { readonly kind: 'unknown'; readonly code: number; readonly value: Uint8Array };

export interface OpenMessage {
  readonly type: 'open';
  /** RFC 4271 §4.2: always 4 for what we send; decoding rejects anything else. */
  readonly version: number;
  /** The 2-octet "My Autonomous System" field: AS_TRANS when the real ASN needs 4 octets. */
  readonly myAutonomousSystem: number;
  readonly holdTime: number;
  readonly bgpIdentifier: string;
  readonly capabilities: readonly Capability[];
}

/** Builds an OPEN for an ASN, putting AS_TRANS in the 2-octet field where needed (RFC 6793 §3). */
export function makeOpen(init: {
  asn: Asn;
  holdTime: number;
  bgpIdentifier: string;
  capabilities: readonly Capability[];
}): OpenMessage {
  const caps = init.capabilities.some((c) => c.kind === 'fourOctetAs')
    ? init.capabilities
    : [...init.capabilities, { kind: 'fourOctetAs', asn: init.asn } as const];
  return {
    type: 'open',
    version: 4,
    myAutonomousSystem: init.asn > 0xffff ? AS_TRANS : init.asn,
    holdTime: init.holdTime,
    bgpIdentifier: init.bgpIdentifier,
    capabilities: caps,
  };
}

/** The peer's ASN: from the 4-octet AS capability when present (RFC 6793 §4.1). */
export function openAsn(open: OpenMessage): Asn {
  for (const c of open.capabilities) if (c.kind === 'fourOctetAs') return c.asn;
  return open.myAutonomousSystem as Asn;
}

const malformed = (what: string) => openError(UNSPECIFIC, `malformed OPEN: ${what}`);

/** Decodes an OPEN body (the bytes after the 19-byte header). */
export function decodeOpen(body: Uint8Array): OpenMessage {
  const r = new Reader(body, 0, body.length, (what) => malformed(`${what} runs past the message end`));
  const version = r.u8('version');
  // RFC 4271 §6.2: Data is "a 2-octet unsigned integer, which indicates the largest,
  // locally-supported version number less than the version the remote BGP peer bid".
  if (version !== 4) {
    throw openError(OpenSubcode.UnsupportedVersionNumber, `version ${version} is not 4`, Uint8Array.of(0, 4));
  }
  const myAutonomousSystem = r.u16('my autonomous system');
  const holdTime = r.u16('hold time');
  // RFC 4271 §6.2: "An implementation MUST reject Hold Time values of one or two seconds."
  if (holdTime === 1 || holdTime === 2) {
    throw openError(OpenSubcode.UnacceptableHoldTime, `hold time ${holdTime} is 1 or 2 seconds`);
  }
  const id = r.u32('BGP identifier');
  // RFC 6286 §2.1: the identifier is a non-zero 4-octet unsigned integer.
  if (id === 0) throw openError(OpenSubcode.BadBgpIdentifier, 'BGP identifier is 0');
  let paramsLen = r.u8('optional parameters length');
  let extended = false;
  // RFC 9072 §2: Non-Ext OP Len 255 and Non-Ext OP Type 255 mean a 2-octet length follows,
  // and each parameter then has a 2-octet length.
  if (paramsLen === 255 && r.remaining > 0 && body[r.pos] === 255) {
    r.u8('extended optional parameters type');
    paramsLen = r.u16('extended optional parameters length');
    extended = true;
  }
  if (paramsLen !== r.remaining) {
    throw malformed(`optional parameters length ${paramsLen} but ${r.remaining} bytes follow`);
  }
  const capabilities: Capability[] = [];
  while (r.remaining > 0) {
    const type = r.u8('optional parameter type');
    const len = extended ? r.u16('optional parameter length') : r.u8('optional parameter length');
    const p = r.sub(len, `optional parameter of length ${len}`);
    // RFC 5492 §4: Capabilities is optional parameter 2; RFC 4271 §6.2: anything else
    // we do not support (including deprecated Authentication, 1) is Unsupported Optional Parameter.
    if (type !== 2) {
      throw openError(OpenSubcode.UnsupportedOptionalParameter, `optional parameter type ${type}`);
    }
    while (p.remaining > 0) capabilities.push(decodeCapability(p));
  }
  return {
    type: 'open',
    version,
    myAutonomousSystem,
    holdTime,
    bgpIdentifier: formatIpv4(id),
    capabilities,
  };
}

function decodeCapability(p: Reader): Capability {
  const code = p.u8('capability code');
  const len = p.u8('capability length');
  const v = p.sub(len, `capability ${code} of length ${len}`);
  const exact = (n: number) => {
    if (len !== n) throw malformed(`capability ${code} has length ${len}, expected ${n}`);
  };
  const multipleOf = (n: number, min = n) => {
    if (len < min || (len - min) % n !== 0) throw malformed(`capability ${code} has length ${len}`);
  };
  switch (code) {
    case CapabilityCode.Multiprotocol: {
      exact(4); // RFC 4760 §8: AFI (2), Reserved (1), SAFI (1)
      const afi = v.u16('afi');
      v.u8('reserved');
      return { kind: 'multiprotocol', afi, safi: v.u8('safi') };
    }
    case CapabilityCode.RouteRefresh:
      exact(0);
      return { kind: 'routeRefresh' };
    case CapabilityCode.EnhancedRouteRefresh:
      exact(0);
      return { kind: 'enhancedRouteRefresh' };
    case CapabilityCode.ExtendedMessage:
      exact(0);
      return { kind: 'extendedMessage' };
    case CapabilityCode.FourOctetAs:
      exact(4);
      return { kind: 'fourOctetAs', asn: v.u32('asn') as Asn };
    case CapabilityCode.GracefulRestart: {
      multipleOf(4, 2); // RFC 4724 §3: flags+time (2), then (AFI, SAFI, flags) per family
      const word = v.u16('restart flags and time');
      const families: GracefulRestartFamily[] = [];
      while (v.remaining > 0) {
        const afi = v.u16('afi');
        const safi = v.u8('safi');
        families.push({ afi, safi, forwardingPreserved: (v.u8('family flags') & 0x80) !== 0 });
      }
      return {
        kind: 'gracefulRestart',
        restarting: (word & 0x8000) !== 0,
        notification: (word & 0x4000) !== 0,
        restartTime: word & 0x0fff,
        families,
      };
    }
    case CapabilityCode.AddPath: {
      multipleOf(4); // RFC 7911 §4: AFI (2), SAFI (1), Send/Receive (1)
      const families: { afi: number; safi: number; mode: AddPathMode }[] = [];
      while (v.remaining > 0) {
        const afi = v.u16('afi');
        const safi = v.u8('safi');
        const m = v.u8('send/receive');
        const mode = ADD_PATH_MODES[m - 1];
        if (mode === undefined) throw malformed(`ADD-PATH send/receive value ${m}`);
        families.push({ afi, safi, mode });
      }
      return { kind: 'addPath', families };
    }
    case CapabilityCode.ExtendedNextHop: {
      multipleOf(6); // RFC 8950 §3: NLRI AFI (2), NLRI SAFI (2), Nexthop AFI (2)
      const families: { afi: number; safi: number; nextHopAfi: number }[] = [];
      while (v.remaining > 0) {
        families.push({ afi: v.u16('afi'), safi: v.u16('safi'), nextHopAfi: v.u16('next hop afi') });
      }
      return { kind: 'extendedNextHop', families };
    }
    case CapabilityCode.Fqdn: {
      // draft-walton-bgp-hostname-capability: length-prefixed hostname and domain name.
      const hostname = v.bytes(v.u8('hostname length'), 'hostname');
      const domainName = v.bytes(v.u8('domain name length'), 'domain name');
      if (v.remaining !== 0) throw malformed('FQDN capability has trailing bytes');
      const td = new TextDecoder();
      return { kind: 'fqdn', hostname: td.decode(hostname), domainName: td.decode(domainName) };
    }
    default:
      // RFC 5492 §3: unknown capabilities are ignored; we keep their bytes.
      return { kind: 'unknown', code, value: v.bytes(len, 'capability value').slice() };
  }
}

function encodeCapability(w: Writer, c: Capability): void {
  const start = w.pos;
  w.u8(0).u8(0); // code and length, patched below
  let code: number;
  switch (c.kind) {
    case 'multiprotocol':
      code = CapabilityCode.Multiprotocol;
      w.u16(c.afi).u8(0).u8(c.safi);
      break;
    case 'routeRefresh':
      code = CapabilityCode.RouteRefresh;
      break;
    case 'enhancedRouteRefresh':
      code = CapabilityCode.EnhancedRouteRefresh;
      break;
    case 'extendedMessage':
      code = CapabilityCode.ExtendedMessage;
      break;
    case 'fourOctetAs':
      code = CapabilityCode.FourOctetAs;
      w.u32(c.asn);
      break;
    case 'gracefulRestart':
      code = CapabilityCode.GracefulRestart;
      if (!Number.isInteger(c.restartTime) || c.restartTime < 0 || c.restartTime > 4095) {
        throw new RangeError(`graceful restart time out of range (0..4095): ${c.restartTime}`);
      }
      w.u16((c.restarting ? 0x8000 : 0) | (c.notification ? 0x4000 : 0) | c.restartTime);
      for (const f of c.families)
        w.u16(f.afi)
          .u8(f.safi)
          .u8(f.forwardingPreserved ? 0x80 : 0);
      break;
    case 'addPath':
      code = CapabilityCode.AddPath;
      // RFC 7911 §4: one or more (AFI, SAFI, Send/Receive) tuples.
      if (c.families.length === 0) throw new RangeError('ADD-PATH capability needs at least one family');
      for (const f of c.families)
        w.u16(f.afi)
          .u8(f.safi)
          .u8(ADD_PATH_MODES.indexOf(f.mode) + 1);
      break;
    case 'extendedNextHop':
      code = CapabilityCode.ExtendedNextHop;
      // RFC 8950 §3: one or more (NLRI AFI, NLRI SAFI, Nexthop AFI) tuples.
      if (c.families.length === 0)
        throw new RangeError('extended next hop capability needs at least one family');
      for (const f of c.families) w.u16(f.afi).u16(f.safi).u16(f.nextHopAfi);
      break;
    case 'fqdn': {
      code = CapabilityCode.Fqdn;
      const te = new TextEncoder();
      const h = te.encode(c.hostname);
      const d = te.encode(c.domainName);
      if (h.length > 255 || d.length > 255)
        throw new RangeError('FQDN capability: names are at most 255 bytes');
      w.u8(h.length).bytes(h).u8(d.length).bytes(d);
      break;
    }
    case 'unknown':
      code = c.code;
      w.bytes(c.value);
      break;
  }
  const len = w.pos - start - 2;
  if (len > 255) throw new RangeError(`capability ${c.kind} is ${len} bytes; at most 255 fit`);
  w.patchU8(start, code);
  w.patchU8(start + 1, len);
}

export function encodeOpen(m: OpenMessage): Uint8Array {
  const w = new Writer(64 + 8 * m.capabilities.length);
  writeHeader(w, MessageType.Open);
  w.u8(m.version)
    .u16(m.myAutonomousSystem)
    .u16(m.holdTime)
    .u32(ipv4OrThrow(m.bgpIdentifier, 'bgpIdentifier'));
  const caps = new Writer();
  for (const c of m.capabilities) encodeCapability(caps, c);
  const capBytes = caps.finish();
  if (capBytes.length === 0) {
    w.u8(0);
  } else if (capBytes.length + 2 <= 255) {
    // The common form: one Capabilities parameter holding every capability.
    w.u8(capBytes.length + 2)
      .u8(2)
      .u8(capBytes.length)
      .bytes(capBytes);
  } else {
    // RFC 9072 §2: only when the parameters do not fit in 255 bytes.
    w.u8(255)
      .u8(255)
      .u16(capBytes.length + 3)
      .u8(2)
      .u16(capBytes.length)
      .bytes(capBytes);
  }
  return patchLength(w, MAX_OPEN_LENGTH);
}

/** RFC 8654 §4: OPEN stays within 4096 bytes even when Extended Message is supported. */
const MAX_OPEN_LENGTH = 4096;
