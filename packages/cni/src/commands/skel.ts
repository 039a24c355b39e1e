// The plugin as a function of its inputs (libcni's skel dispatcher): environment and stdin
// in, result or error object on stdout and an exit code out. Both executables (tabby and
// tabby-ipam) run through here with their own handlers.
import type { NetConf } from '../spec/config.js';
import { decodeJson, parseNetConf } from '../spec/config.js';
import type { CniCommand, CniEnv } from '../spec/env.js';
import { parseCommand, parseEnv } from '../spec/env.js';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import type { CniResult } from '../spec/result.js';
import { encodeResult } from '../spec/result.js';
import { CURRENT_VERSION, requireAtLeast, SUPPORTED_VERSIONS } from '../spec/version.js';
import type { Ctx, Log } from './context.js';

export interface Writer {
  write(s: string): unknown;
}

export interface RunIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The config: a string, or a stream (process.stdin). */
  readonly stdin: string | AsyncIterable<string | Uint8Array>;
  readonly stdout: Writer;
  readonly stderr: Writer;
}

export interface Handlers {
  /** `ipam`: print the abbreviated IPAM result (no interfaces). */
  readonly ipamResult: boolean;
  add(ctx: Ctx): Promise<CniResult>;
  del(ctx: Ctx): Promise<void>;
  check(ctx: Ctx): Promise<void>;
  gc(ctx: Ctx): Promise<void>;
  status(ctx: Ctx): Promise<void>;
}

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 } as const;

export function stderrLog(stderr: Writer, level: keyof typeof LEVELS, tag: string): Log {
  return (l, msg) => {
    if (LEVELS[l] >= LEVELS[level]) stderr.write(`${tag} ${l}: ${msg}\n`);
  };
}

async function readAll(stdin: RunIo['stdin']): Promise<string> {
  if (typeof stdin === 'string') return stdin;
  const parts: Buffer[] = [];
  try {
    for await (const c of stdin) parts.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
  } catch (e) {
    throw new CniError(ErrorCode.IoFailure, 'error reading from stdin', errorText(e));
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Runs one invocation; resolves with the exit code (0, or 1 with an error object printed). */
export async function dispatch(
  io: RunIo,
  tag: string,
  handlers: Handlers,
  now: () => Date = () => new Date(),
): Promise<number> {
  let version = CURRENT_VERSION;
  let log = stderrLog(io.stderr, 'warn', tag);
  try {
    const command: CniCommand = parseCommand(io.env);
    if (command === 'VERSION') {
      // Anything on stdin but a version is ignored (libcni ignores stdin entirely).
      let asked = CURRENT_VERSION;
      try {
        const v = decodeJson(await readAll(io.stdin))['cniVersion'];
        if (typeof v === 'string' && v !== '') asked = v;
      } catch {
        // keep the current version
      }
      io.stdout.write(JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
      return 0;
    }
    const env: CniEnv = parseEnv(io.env);
    const text = await readAll(io.stdin);
    try {
      // Errors about the rest of the config are still answered in its version.
      const v = decodeJson(text)['cniVersion'];
      if (typeof v === 'string' && SUPPORTED_VERSIONS.includes(v)) version = v;
    } catch {
      // parseNetConf reports it
    }
    const conf: NetConf = parseNetConf(text);
    version = conf.cniVersion;
    log = stderrLog(io.stderr, conf.logLevel, tag);
    const ctx: Ctx = { env, conf, log, now };
    log('debug', `${command} container=${env.containerId} ifname=${env.ifname} netns=${env.netns}`);
    switch (command) {
      case 'ADD': {
        const res = await handlers.add(ctx);
        io.stdout.write(JSON.stringify(encodeResult(res, conf.cniVersion, handlers.ipamResult)) + '\n');
        return 0;
      }
      case 'DEL':
        await handlers.del(ctx);
        return 0;
      case 'CHECK':
        requireAtLeast(conf.cniVersion, '0.4.0', 'CHECK');
        await handlers.check(ctx);
        return 0;
      case 'GC':
        requireAtLeast(conf.cniVersion, '1.1.0', 'GC');
        await handlers.gc(ctx);
        return 0;
      case 'STATUS':
        requireAtLeast(conf.cniVersion, '1.1.0', 'STATUS');
        await handlers.status(ctx);
        return 0;
    }
  } catch (e) {
    const err =
      e instanceof CniError
        ? e
        : new CniError(ErrorCode.Internal, 'internal error', errorText(e), { cause: e });
    log('error', err.message);
    io.stdout.write(JSON.stringify(err.toJSON(version)) + '\n');
    return 1;
  }
}
