// The `tabby` executable's first steps, shared by bin/tabby.js (a checkout) and the bundle's
// tabby.cjs (tools/tabby-entry.mjs): read stdin, hand ADD, DEL and CHECK whole to tabby-node
// (node-api/delegate.ts), and only when it does not take them load the plugin itself.
//
// Every pod start waits on this process, and a Node process costs its start before any of our
// code runs, so the path to the daemon does as little as Node allows (measured with
// `npm run bench:cni`): the bundle's entry is one CommonJS file (an ES module entry costs Node 20
// about 4 ms more), stdin is tested with isatty() rather than through process.stdin (which builds
// a stream), the answer is written with writeSync (process.stdout builds another), and the
// compile cache (a directory made and read) goes on only before the plugin proper is loaded.
import { readFileSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { RunIo, Writer } from './commands/skel.js';
import { enableCompileCache } from './compile-cache.js';
import { delegate } from './node-api/delegate.js';

/** The plugin proper (./main.ts), loaded on demand. */
export interface PluginModule {
  mainTabby(io: RunIo): Promise<number>;
}

/** A Writer on a file descriptor: blocking writes, or the stream when the descriptor is non-blocking. */
function fdWriter(fd: 1 | 2): Writer {
  return {
    write(s: string): void {
      let buf = Buffer.from(s, 'utf8');
      while (buf.length > 0) {
        let n: number;
        try {
          n = writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          // a non-blocking pipe that is full: the stream waits for it
          (fd === 1 ? process.stdout : process.stderr).write(buf);
          return;
        }
        buf = buf.subarray(n);
      }
    },
  };
}

/** Runs the executable: resolves with its exit code once its output is written. */
export async function runTabby(loadPlugin: () => Promise<PluginModule>): Promise<number> {
  // A terminal on stdin (someone trying VERSION by hand) must not block the read.
  let stdin = '';
  let unreadable: unknown;
  if (!isatty(0)) {
    try {
      // One blocking read to the end: quicker than setting up process.stdin's stream.
      stdin = readFileSync(0, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN')
        unreadable = e; // the plugin reports it (IoFailure)
      else {
        // a non-blocking stdin (rare): read it as a stream
        const parts: Buffer[] = [];
        try {
          for await (const c of process.stdin) parts.push(c as Buffer);
          stdin = Buffer.concat(parts).toString('utf8');
        } catch (e2) {
          unreadable = e2;
        }
      }
    }
  }
  if (unreadable === undefined) {
    const code = await delegate(process.env, stdin, fdWriter(1), fdWriter(2));
    if (code !== undefined) return code;
  }
  enableCompileCache(process.env);
  const plugin = await loadPlugin();
  return plugin.mainTabby({
    env: process.env,
    stdin: unreadable === undefined ? stdin : failingStream(unreadable),
    stdout: process.stdout,
    stderr: process.stderr,
  });
}

/** A stdin whose read fails as ours did: the plugin reports it (IoFailure). */
function failingStream(e: unknown): AsyncIterable<string> {
  const failure = e instanceof Error ? e : new Error(String(e));
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(failure) }) };
}
