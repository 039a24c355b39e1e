// Typed errors. A kernel refusal (NLMSG_ERROR with a negative errno) is a NetlinkError
// carrying the errno, its name (EEXIST, ENODEV, ESRCH...), the kernel's extended-ack
// message when it gave one, and which operation failed. Malformed bytes from the kernel
// (or in a vector) are a NetlinkProtocolError.
import { getSystemErrorName } from 'node:util';

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${errno}`;
  }
}

export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  /** Positive errno. */
  readonly errno: number;
  /** Its symbolic name, e.g. 'EEXIST'. */
  readonly code: string;
  /** The kernel's extended-ack text, if any (e.g. "Nexthop has invalid gateway"). */
  readonly kernelMessage: string | undefined;
  /** Byte offset of the offending attribute in the request, if the kernel said. */
  readonly attributeOffset: number | undefined;
  /** What was being done, e.g. 'RTM_NEWROUTE 10.65.1.0/26'. */
  readonly operation: string;

  constructor(
    errno: number,
    operation: string,
    kernelMessage?: string,
    attributeOffset?: number,
    options?: ErrorOptions,
  ) {
    const code = errnoName(errno);
    super(`${operation}: ${code}${kernelMessage ? `: ${kernelMessage}` : ''}`, options);
    this.errno = Math.abs(errno);
    this.code = code;
    this.kernelMessage = kernelMessage;
    this.attributeOffset = attributeOffset;
    this.operation = operation;
  }
}

export class NetlinkProtocolError extends Error {
  override readonly name = 'NetlinkProtocolError';
}

/** True when e is a NetlinkError with the given code (e.g. isErrno(e, 'EEXIST')). */
export function isErrno(e: unknown, code: string): e is NetlinkError {
  return e instanceof NetlinkError && e.code === code;
}
