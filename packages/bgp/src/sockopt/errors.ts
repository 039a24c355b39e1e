// The errors of the socket-option layer. Each has a stable `code` to branch on.

/** The native addon cannot be used: not built, not loadable, or not Linux. */
export class SockoptUnavailableError extends Error {
  readonly code = 'ERR_BGP_SOCKOPT_UNAVAILABLE';
  override readonly name = 'SockoptUnavailableError';
  /** The addon file looked for. */
  readonly addonPath: string;
  constructor(message: string, addonPath: string, options?: ErrorOptions) {
    super(message, options);
    this.addonPath = addonPath;
  }
}

/** A system call failed while setting or reading an option; `code` is the errno name. */
export class SockoptError extends Error {
  override readonly name = 'SockoptError';
  /** errno name, e.g. `EINVAL`, `ENODEV`, `EPERM`. */
  readonly code: string;
  /** errno as a positive number. */
  readonly errno: number;
  readonly syscall: string;
  /** The option or step at fault: `TCP_MD5SIG`, `IP_MINTTL`, `SO_BINDTODEVICE`, `bind`, ... */
  readonly option: string;
  constructor(init: { message: string; code: string; errno: number; syscall: string; option: string }) {
    super(init.message);
    this.code = init.code;
    this.errno = init.errno;
    this.syscall = init.syscall;
    this.option = init.option;
  }
}

/**
 * connectTcp() got no answer within its timeout. With TCP-MD5 or GTSM this is what a wrong
 * or missing key, or a TTL below the peer's minimum, looks like: the peer's kernel drops the
 * SYNs without a word (RFC 2385 §2.0, RFC 5082 §3).
 */
export class ConnectTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  override readonly name = 'ConnectTimeoutError';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeoutMs: number,
  ) {
    super(`connect to ${host.includes(':') ? `[${host}]` : host}:${port} timed out after ${timeoutMs} ms`);
  }
}
