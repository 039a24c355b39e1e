// Running a delegated plugin (SPEC.md §4 "Delegated plugin execution procedure"): looked up
// in CNI_PATH, given our environment with CNI_COMMAND set, the config on stdin, its stderr
// passed through to ours. Its error object comes back as a CniError with its own code.
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { isObject } from '../spec/result.js';
import type { PluginExec } from './interfaces.js';

export interface ExecOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly path: readonly string[];
  readonly stderr: (s: string) => void;
  /** Kill the plugin after this long. [Default: 60 s] */
  readonly timeoutMs?: number;
}

export function processExec(opts: ExecOptions): PluginExec {
  return async (type, command, stdin) => {
    const [cp, fsp, path] = await Promise.all([
      import('node:child_process'),
      import('node:fs/promises'),
      import('node:path'),
    ]);
    const { spawn } = cp;
    const join = (a: string, b: string) => path.join(a, b);
    const access = (f: string) => fsp.access(f, fsp.constants.X_OK);
    if (opts.path.length === 0)
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        'required env variables [CNI_PATH] missing',
        `needed to find the IPAM plugin ${type}`,
      );
    let file: string | undefined;
    for (const dir of opts.path) {
      const f = join(dir, type);
      try {
        await access(f);
        file = f;
        break;
      } catch {
        // not in this directory
      }
    }
    if (file === undefined)
      throw new CniError(
        ErrorCode.DelegateFailed,
        `plugin ${type} not found`,
        `no executable ${type} in CNI_PATH ${opts.path.join(':')}`,
      );
    const exe = file;
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(exe, [], {
        env: { ...opts.env, CNI_COMMAND: command },
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: opts.timeoutMs ?? 60_000,
      });
      const out: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => opts.stderr(b.toString('utf8')));
      child.on('error', (e) =>
        reject(new CniError(ErrorCode.DelegateFailed, `plugin ${type} could not run`, errorText(e))),
      );
      child.on('close', (c) => resolve({ code: c, stdout: Buffer.concat(out).toString('utf8') }));
      child.stdin.on('error', () => {
        // EPIPE: the plugin exited without reading; its exit status tells the story.
      });
      child.stdin.end(stdin);
    });
    if (code === 0) return stdout;
    let v: unknown;
    try {
      v = JSON.parse(stdout);
    } catch {
      v = undefined;
    }
    if (isObject(v) && typeof v['code'] === 'number' && typeof v['msg'] === 'string')
      throw new CniError(v['code'], v['msg'], typeof v['details'] === 'string' ? v['details'] : '');
    throw new CniError(
      ErrorCode.DelegateFailed,
      `plugin ${type} ${command} failed`,
      `exit ${code ?? 'by signal'}${stdout.trim() === '' ? '' : `: ${stdout.trim().slice(0, 500)}`}`,
    );
  };
}
