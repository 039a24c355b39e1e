// Any failure as the CniError the runtime sees: typed errors keep their meaning, anything
// else gets the code of the step that failed.
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { InterfaceExistsError, NetnsNotFoundError } from './interfaces.js';

export function toCniError(e: unknown, fallback: number, what: string): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof NetnsNotFoundError)
    return new CniError(
      ErrorCode.NetnsNotFound,
      `CNI_NETNS ${e.netns} does not exist`,
      `${what}: ${e.message}`,
    );
  if (e instanceof InterfaceExistsError)
    return new CniError(
      ErrorCode.InterfaceExists,
      `interface ${e.ifname} already exists ${e.where === 'pod' ? 'in the container' : 'on the host'}`,
      what,
    );
  return new CniError(fallback, what, errorText(e), { cause: e });
}

/** `err` with what rollback (or a best-effort DEL) could not undo appended to its details. */
export function withTrailer(err: CniError, trailer: readonly string[]): CniError {
  if (trailer.length === 0) return err;
  const details = [err.details, ...trailer].filter((x) => x !== '').join('; ');
  return new CniError(err.code, err.msg, details, { cause: err });
}

const TRANSIENT = new Set(['Unavailable', 'Conflict', 'RetriesExhausted']);
const NO_ADDRESS = new Set(['PoolExhausted', 'NoEligiblePool', 'MaxBlocksReached']);

const codeOf = (e: unknown): unknown =>
  typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;

/**
 * A datastore or IPAM error as the runtime should see it: 101, 11 (retry) or 102. By the
 * error's `code`, whether it was thrown in this process or carried over the node daemon's
 * socket (../node-api/client.ts).
 */
export function ipamError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  const code = codeOf(e);
  const text = errorText(e);
  if (typeof code === 'string' && NO_ADDRESS.has(code))
    return new CniError(ErrorCode.NoAddress, `${what}: no address available`, text, { cause: e });
  if (typeof code === 'string' && TRANSIENT.has(code))
    return new CniError(ErrorCode.TryAgainLater, `${what}: the datastore is busy or unreachable`, text, {
      cause: e,
    });
  return new CniError(ErrorCode.IpamRefused, `${what} failed`, text, { cause: e });
}

/**
 * A WorkloadEndpoint write or delete that failed: 11 when the datastore is unreachable or
 * busy (the runtime retries), else 100 with the datastore's reason (an endpoint the
 * datastore refuses is a bug of ours, not of the pod's).
 */
export function endpointError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  const code = codeOf(e);
  if (typeof code === 'string' && TRANSIENT.has(code))
    return new CniError(
      ErrorCode.TryAgainLater,
      `${what}: the datastore is busy or unreachable`,
      errorText(e),
      {
        cause: e,
      },
    );
  return new CniError(ErrorCode.Internal, `${what} failed`, errorText(e), { cause: e });
}
