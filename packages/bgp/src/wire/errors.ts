// The NOTIFICATION catalogue and the one typed error every decoder throws.
//
// Wire numbers come from the IANA "BGP Error (Notification) Codes" and "BGP Error
// Subcodes" registries, written out here by value: never derived from ordinals.

/** RFC 4271 §4.5 error codes, plus RFC 7313 (7) and RFC 9687 (8). */
export const ErrorCode = {
  MessageHeader: 1,
  OpenMessage: 2,
  UpdateMessage: 3,
  HoldTimerExpired: 4,
  FiniteStateMachine: 5,
  Cease: 6,
  RouteRefreshMessage: 7,
  SendHoldTimerExpired: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** RFC 4271 §4.5: subcode 0 means "Unspecific" under every code. */
export const UNSPECIFIC = 0;

/** RFC 4271 §6.1. */
export const HeaderSubcode = {
  ConnectionNotSynchronized: 1,
  BadMessageLength: 2,
  BadMessageType: 3,
} as const;

/** RFC 4271 §6.2, RFC 5492 (7), RFC 9234 (11); 5, 8, 9, 10 are deprecated. */
export const OpenSubcode = {
  UnsupportedVersionNumber: 1,
  BadPeerAs: 2,
  BadBgpIdentifier: 3,
  UnsupportedOptionalParameter: 4,
  UnacceptableHoldTime: 6,
  UnsupportedCapability: 7,
  RoleMismatch: 11,
} as const;

/** RFC 4271 §6.3; 7 (AS Routing Loop) is deprecated. */
export const UpdateSubcode = {
  MalformedAttributeList: 1,
  UnrecognizedWellKnownAttribute: 2,
  MissingWellKnownAttribute: 3,
  AttributeFlagsError: 4,
  AttributeLengthError: 5,
  InvalidOriginAttribute: 6,
  InvalidNextHopAttribute: 8,
  OptionalAttributeError: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;

/** RFC 6608. */
export const FsmSubcode = {
  UnexpectedMessageInOpenSent: 1,
  UnexpectedMessageInOpenConfirm: 2,
  UnexpectedMessageInEstablished: 3,
} as const;

/** RFC 4486, RFC 8538 (9), RFC 9384 (10). */
export const CeaseSubcode = {
  MaximumNumberOfPrefixesReached: 1,
  AdministrativeShutdown: 2,
  PeerDeconfigured: 3,
  AdministrativeReset: 4,
  ConnectionRejected: 5,
  OtherConfigurationChange: 6,
  ConnectionCollisionResolution: 7,
  OutOfResources: 8,
  HardReset: 9,
  BfdDown: 10,
} as const;

/** RFC 7313 §5. */
export const RouteRefreshSubcode = {
  InvalidMessageLength: 1,
} as const;

interface CodeEntry {
  readonly name: string;
  readonly rfc: string;
  readonly subcodes: ReadonlyMap<number, { readonly name: string; readonly rfc: string }>;
}

const sub = (entries: [number, string, string][]) =>
  new Map(entries.map(([n, name, rfc]) => [n, { name, rfc }]));

/** Names as the IANA registry spells them; docs/errors.md is checked against this table. */
export const NOTIFICATION_CATALOGUE: ReadonlyMap<number, CodeEntry> = new Map<number, CodeEntry>([
  [
    1,
    {
      name: 'Message Header Error',
      rfc: 'RFC 4271',
      subcodes: sub([
        [0, 'Unspecific', 'RFC 4271'],
        [1, 'Connection Not Synchronized', 'RFC 4271'],
        [2, 'Bad Message Length', 'RFC 4271'],
        [3, 'Bad Message Type', 'RFC 4271'],
      ]),
    },
  ],
  [
    2,
    {
      name: 'OPEN Message Error',
      rfc: 'RFC 4271',
      subcodes: sub([
        [0, 'Unspecific', 'RFC 4271'],
        [1, 'Unsupported Version Number', 'RFC 4271'],
        [2, 'Bad Peer AS', 'RFC 4271'],
        [3, 'Bad BGP Identifier', 'RFC 4271'],
        [4, 'Unsupported Optional Parameter', 'RFC 4271'],
        [5, 'Authentication Failure (deprecated)', 'RFC 4271'],
        [6, 'Unacceptable Hold Time', 'RFC 4271'],
        [7, 'Unsupported Capability', 'RFC 5492'],
        [8, 'Deprecated', 'RFC 9234'],
        [9, 'Deprecated', 'RFC 9234'],
        [10, 'Deprecated', 'RFC 9234'],
        [11, 'Role Mismatch', 'RFC 9234'],
      ]),
    },
  ],
  [
    3,
    {
      name: 'UPDATE Message Error',
      rfc: 'RFC 4271',
      subcodes: sub([
        [0, 'Unspecific', 'RFC 4271'],
        [1, 'Malformed Attribute List', 'RFC 4271'],
        [2, 'Unrecognized Well-known Attribute', 'RFC 4271'],
        [3, 'Missing Well-known Attribute', 'RFC 4271'],
        [4, 'Attribute Flags Error', 'RFC 4271'],
        [5, 'Attribute Length Error', 'RFC 4271'],
        [6, 'Invalid ORIGIN Attribute', 'RFC 4271'],
        [7, 'AS Routing Loop (deprecated)', 'RFC 4271'],
        [8, 'Invalid NEXT_HOP Attribute', 'RFC 4271'],
        [9, 'Optional Attribute Error', 'RFC 4271'],
        [10, 'Invalid Network Field', 'RFC 4271'],
        [11, 'Malformed AS_PATH', 'RFC 4271'],
      ]),
    },
  ],
  [4, { name: 'Hold Timer Expired', rfc: 'RFC 4271', subcodes: sub([[0, 'Unspecific', 'RFC 4271']]) }],
  [
    5,
    {
      name: 'Finite State Machine Error',
      rfc: 'RFC 6608',
      subcodes: sub([
        [0, 'Unspecified Error', 'RFC 6608'],
        [1, 'Receive Unexpected Message in OpenSent State', 'RFC 6608'],
        [2, 'Receive Unexpected Message in OpenConfirm State', 'RFC 6608'],
        [3, 'Receive Unexpected Message in Established State', 'RFC 6608'],
      ]),
    },
  ],
  [
    6,
    {
      name: 'Cease',
      rfc: 'RFC 4486',
      subcodes: sub([
        [0, 'Unspecific', 'RFC 4271'],
        [1, 'Maximum Number of Prefixes Reached', 'RFC 4486'],
        [2, 'Administrative Shutdown', 'RFC 4486, RFC 9003'],
        [3, 'Peer De-configured', 'RFC 4486'],
        [4, 'Administrative Reset', 'RFC 4486, RFC 9003'],
        [5, 'Connection Rejected', 'RFC 4486'],
        [6, 'Other Configuration Change', 'RFC 4486'],
        [7, 'Connection Collision Resolution', 'RFC 4486'],
        [8, 'Out of Resources', 'RFC 4486'],
        [9, 'Hard Reset', 'RFC 8538'],
        [10, 'BFD Down', 'RFC 9384'],
      ]),
    },
  ],
  [
    7,
    {
      name: 'ROUTE-REFRESH Message Error',
      rfc: 'RFC 7313',
      subcodes: sub([
        [0, 'Reserved', 'RFC 7313'],
        [1, 'Invalid Message Length', 'RFC 7313'],
      ]),
    },
  ],
  [8, { name: 'Send Hold Timer Expired', rfc: 'RFC 9687', subcodes: sub([[0, 'Unspecific', 'RFC 9687']]) }],
]);

export function errorCodeName(code: number): string {
  return NOTIFICATION_CATALOGUE.get(code)?.name ?? `Unknown error code ${code}`;
}

export function errorSubcodeName(code: number, subcode: number): string {
  return NOTIFICATION_CATALOGUE.get(code)?.subcodes.get(subcode)?.name ?? `Unknown subcode ${subcode}`;
}

/**
 * What a receiver does about an error, weakest first (RFC 7606 §2). Only
 * `session-reset` sends the NOTIFICATION; the others keep the session up.
 */
export type ErrorAction = 'attribute-discard' | 'treat-as-withdraw' | 'afi-safi-disable' | 'session-reset';

const ACTION_RANK: Record<ErrorAction, number> = {
  'attribute-discard': 0,
  'treat-as-withdraw': 1,
  'afi-safi-disable': 2,
  'session-reset': 3,
};

/** The stronger of two actions (RFC 7606 §3: the most severe error decides). */
export function strongerAction(a: ErrorAction, b: ErrorAction): ErrorAction {
  return ACTION_RANK[a] >= ACTION_RANK[b] ? a : b;
}

/**
 * A protocol error with the exact NOTIFICATION the RFCs say to send for it:
 * the only exception any decoder in this package throws for malformed input.
 */
export class BgpNotification extends Error {
  override readonly name = 'BgpNotification';
  constructor(
    readonly code: number,
    readonly subcode: number,
    /** The Data field to send, as the RFC section for this error prescribes. */
    readonly data: Uint8Array,
    /** A sentence for logs saying what exactly was wrong. */
    readonly reason: string,
    readonly action: ErrorAction = 'session-reset',
    /** The path attribute type code the error is about, if any (RFC 7606). */
    readonly attributeType?: number,
  ) {
    super(`${errorCodeName(code)} / ${errorSubcodeName(code, subcode)}: ${reason}`);
  }

  get codeName(): string {
    return errorCodeName(this.code);
  }

  get subcodeName(): string {
    return errorSubcodeName(this.code, this.subcode);
  }

  /** The same error handled with another RFC 7606 action. */
  withAction(action: ErrorAction): BgpNotification {
    return new BgpNotification(this.code, this.subcode, this.data, this.reason, action, this.attributeType);
  }
}

const EMPTY = new Uint8Array(0);

export function headerError(subcode: number, data: Uint8Array, reason: string): BgpNotification {
  return new BgpNotification(ErrorCode.MessageHeader, subcode, data, reason);
}

export function openError(subcode: number, reason: string, data: Uint8Array = EMPTY): BgpNotification {
  return new BgpNotification(ErrorCode.OpenMessage, subcode, data, reason);
}

export function updateError(
  subcode: number,
  reason: string,
  action: ErrorAction,
  data: Uint8Array = EMPTY,
  attributeType?: number,
): BgpNotification {
  return new BgpNotification(ErrorCode.UpdateMessage, subcode, data, reason, action, attributeType);
}
