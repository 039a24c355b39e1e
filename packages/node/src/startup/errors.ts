// Start-up's typed errors. Callers branch on `code`; every message names what to change: the
// variable (or file field, or flag), the address and the other Node, the step that failed.

export type StartupErrorCode =
  'InvalidSetting' | 'AutodetectionFailed' | 'NoAddress' | 'AddressConflict' | 'StepFailed';

export abstract class StartupError extends Error {
  abstract readonly code: StartupErrorCode;
}

/**
 * Where a setting came from: a command-line flag, a field of the YAML file, the environment,
 * or (the node name only) the nodename file or the host name.
 */
export type SettingSource =
  | { readonly kind: 'flag'; readonly name: string }
  | { readonly kind: 'file'; readonly name: string; readonly file: string }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'nodename-file'; readonly name: string }
  | { readonly kind: 'hostname' }
  | { readonly kind: 'default'; readonly name: string };

export function describeSource(s: SettingSource): string {
  switch (s.kind) {
    case 'flag':
      return `flag --${s.name}`;
    case 'file':
      return `${s.file}: ${s.name}`;
    case 'env':
      return `environment variable ${s.name}`;
    case 'nodename-file':
      return `nodename file ${s.name}`;
    case 'hostname':
      return 'the host name';
    case 'default':
      return `${s.name} (default)`;
  }
}

export interface SettingIssue {
  /** The variable, file field or flag at fault (for a conflict, the first of them). */
  readonly source: SettingSource;
  readonly reason: string;
}

/** One or more settings are invalid; every problem is listed at once, each naming its variable. */
export class SettingsError extends StartupError {
  override readonly name = 'SettingsError';
  readonly code = 'InvalidSetting';
  constructor(readonly issues: readonly SettingIssue[]) {
    super(issues.map((i) => `${describeSource(i.source)}: ${i.reason}`).join('\n'));
  }
}

/** The node has no address of this family and the autodetection method found none. */
export class AutodetectionError extends StartupError {
  override readonly name = 'AutodetectionError';
  readonly code = 'AutodetectionFailed';
  constructor(
    readonly family: 4 | 6,
    /** The method as configured, e.g. `can-reach=8.8.8.8`. */
    readonly method: string,
    readonly reason: string,
  ) {
    super(
      `could not autodetect an IPv${family} address with ${method} (${family === 4 ? 'IP' : 'IP6'}_AUTODETECTION_METHOD): ` +
        `${reason}; choose another autodetection method or set ${family === 4 ? 'IP' : 'IP6'} to an address`,
    );
  }
}

/** Neither an IPv4 nor an IPv6 address was configured or detected (startup.go:394). */
export class NoAddressError extends StartupError {
  override readonly name = 'NoAddressError';
  readonly code = 'NoAddress';
  constructor(readonly node: string) {
    super(
      `node ${node} has no IPv4 or IPv6 address, configured or detected, and BGP networking needs one: ` +
        'set IP or IP6 (an address, or autodetect), or CALICO_NETWORKING_BACKEND=none',
    );
  }
}

export interface AddressConflict {
  readonly family: 4 | 6;
  readonly address: string;
  /** The other Node that already has it. */
  readonly node: string;
}

/** Another Node already uses this node's address (startup.go:1142, checkConflictingNodes). */
export class AddressConflictError extends StartupError {
  override readonly name = 'AddressConflictError';
  readonly code = 'AddressConflict';
  constructor(
    readonly node: string,
    readonly conflicts: readonly AddressConflict[],
  ) {
    super(
      conflicts
        .map(
          (c) =>
            `IPv${c.family} address ${c.address} of node ${node} is already used by Node ${c.node}: ` +
            'two nodes cannot share an address (set DISABLE_NODE_IP_CHECK=true only if this is intended)',
        )
        .join('\n'),
    );
  }
}

export type StartupStep =
  'settings' | 'nodename-file' | 'addresses' | 'register' | 'pools' | 'tunnel-addresses';

/** A start-up step failed; `cause` is the step's own error (one of the above, or the datastore's or IPAM's). */
export class StartupStepError extends StartupError {
  override readonly name = 'StartupStepError';
  readonly code = 'StepFailed';
  constructor(
    readonly step: StartupStep,
    override readonly cause: unknown,
  ) {
    super(`start-up step ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}
