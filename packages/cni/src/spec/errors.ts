// The CNI error result (SPEC.md §5 "Error") and every code the plugins return. Codes below
// 100 are the spec's; 100 and above are Tabby's. docs/errors.md lists each one, and a test
// checks the list against CNI_ERROR_CODES both ways.

export interface CniErrorInfo {
  readonly code: number;
  /** The short name used as `msg` prefix in docs and logs. */
  readonly name: string;
}

/** Every code the plugins can return, with its name as docs/errors.md spells it. */
export const CNI_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [1, 'Incompatible CNI version'],
  [2, 'Unsupported field in network configuration'],
  [3, 'Container unknown or does not exist'],
  [4, 'Invalid necessary environment variables'],
  [5, 'I/O failure'],
  [6, 'Failed to decode content'],
  [7, 'Invalid network configuration'],
  [11, 'Try again later'],
  [50, 'Plugin not available'],
  [51, 'Plugin not available, existing containers may have limited connectivity'],
  [100, 'Internal error'],
  [101, 'No address available'],
  [102, 'IPAM request refused'],
  [103, 'Interface already exists'],
  [104, 'Network namespace not found'],
  [105, 'Dataplane operation failed'],
  [106, 'CHECK found a difference'],
  [107, 'Delegated plugin failed'],
  [108, 'GC incomplete'],
]);

export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 100,
  NoAddress: 101,
  IpamRefused: 102,
  InterfaceExists: 103,
  NetnsNotFound: 104,
  DataplaneFailed: 105,
  CheckFailed: 106,
  DelegateFailed: 107,
  GcIncomplete: 108,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The spec's error object; `run` prints it on stdout and exits non-zero. */
export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    /** Short: what failed. Names the env var or config field when one is at fault. */
    readonly msg: string,
    /** Longer: why, and what was undone. */
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(details === '' ? msg : `${msg}: ${details}`, options);
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return {
      cniVersion,
      code: this.code,
      msg: this.msg,
      ...(this.details === '' ? {} : { details: this.details }),
    };
  }
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
