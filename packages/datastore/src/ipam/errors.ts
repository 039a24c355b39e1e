// IPAM's typed errors. Callers (the CNI plugin, the node daemon, the CLI) branch on `code`;
// messages name the node, pools and addresses involved so an operator can act on them.

export type IpamErrorCode =
  | 'NoEligiblePool'
  | 'PoolExhausted'
  | 'MaxBlocksReached'
  | 'AddressInUse'
  | 'AddressNotInPool'
  | 'AffinityMismatch'
  | 'NodeNotFound'
  | 'RetriesExhausted'
  | 'InvalidRequest';

export abstract class IpamError extends Error {
  abstract readonly code: IpamErrorCode;
}

/** No enabled pool of this family matches the node, namespace, requested pools and use. */
export class NoEligiblePoolError extends IpamError {
  override readonly name = 'NoEligiblePoolError';
  readonly code = 'NoEligiblePool';
  constructor(
    readonly node: string,
    readonly family: 4 | 6,
    readonly use: string,
    /** Why each pool of this family was passed over: `<name> (<cidr>): <reason>`. */
    readonly skipped: readonly string[],
  ) {
    super(
      `no IPv${family} pool is eligible for ${use} addresses on node ${node}` +
        (skipped.length === 0
          ? ' (there are no IPv' + String(family) + ' pools)'
          : `: ${skipped.join('; ')}`),
    );
  }
}

/** Eligible pools exist but hold fewer free addresses than were asked for. */
export class PoolExhaustedError extends IpamError {
  override readonly name = 'PoolExhaustedError';
  readonly code = 'PoolExhausted';
  constructor(
    readonly node: string,
    readonly family: 4 | 6,
    readonly pools: readonly string[],
    readonly requested: number,
    readonly assigned: number,
    readonly detail: string,
  ) {
    super(
      `node ${node}: only ${assigned} of ${requested} IPv${family} addresses could be assigned from ` +
        `pools ${pools.join(', ')}${detail === '' ? '' : ` (${detail})`}; nothing was kept`,
    );
  }
}

/** The node holds IPAMConfig.maxBlocksPerHost blocks and needs another. */
export class MaxBlocksReachedError extends IpamError {
  override readonly name = 'MaxBlocksReachedError';
  readonly code = 'MaxBlocksReached';
  constructor(
    readonly node: string,
    readonly limit: number,
  ) {
    super(
      `node ${node} needs a new IPAM block but already has ${limit} (IPAMConfig maxBlocksPerHost ${limit})`,
    );
  }
}

export class AddressInUseError extends IpamError {
  override readonly name = 'AddressInUseError';
  readonly code = 'AddressInUse';
  constructor(
    readonly ip: string,
    /** The handle that holds it, when the allocation has one. */
    readonly owner: string | undefined,
    readonly attrs: Readonly<Record<string, string>>,
  ) {
    const who = Object.entries(attrs)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    super(
      `address ${ip} is already assigned to ${owner === undefined ? '(no handle)' : `handle ${owner}`}` +
        (who === '' ? '' : ` (${who})`),
    );
  }
}

export class AddressNotInPoolError extends IpamError {
  override readonly name = 'AddressNotInPoolError';
  readonly code = 'AddressNotInPool';
  constructor(readonly ip: string) {
    super(`address ${ip} is not in any enabled IP pool`);
  }
}

/** strictAffinity forbids taking an address from a block another node (or no node) owns. */
export class AffinityMismatchError extends IpamError {
  override readonly name = 'AffinityMismatchError';
  readonly code = 'AffinityMismatch';
  constructor(
    readonly node: string,
    readonly block: string,
    readonly affinity: string | undefined,
  ) {
    super(
      `block ${block} is ${affinity === undefined ? 'affine to no node' : `affine to ${affinity}`}, not host:${node}, ` +
        'and IPAMConfig strictAffinity forbids borrowing from it',
    );
  }
}

export class NodeNotFoundError extends IpamError {
  override readonly name = 'NodeNotFoundError';
  readonly code = 'NodeNotFound';
  constructor(readonly node: string) {
    super(`Node ${node} does not exist; IPAM needs its labels to choose pools`);
  }
}

/** A compare-and-swap (or an unavailable backend) kept failing past the attempt limit. */
export class RetriesExhaustedError extends IpamError {
  override readonly name = 'RetriesExhaustedError';
  readonly code = 'RetriesExhausted';
  constructor(
    /** What was being written, e.g. `IPAMBlock 10-65-1-0-26`. */
    readonly what: string,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(
      `${what}: gave up after ${attempts} attempts (last: ${lastError instanceof Error ? lastError.message : String(lastError)})`,
      { cause: lastError },
    );
  }
}

export class InvalidRequestError extends IpamError {
  override readonly name = 'InvalidRequestError';
  readonly code = 'InvalidRequest';
}
