#!/usr/bin/env node
// The tabby CNI plugin; see src/main.ts. Run `npm run build` first in a checkout. The
// compile cache goes on first: it applies to what is loaded after it. ADD, DEL and CHECK go
// whole to tabby-node when it runs (src/node-api/delegate.ts); the plugin itself is loaded
// only when it does not.
import { readFileSync } from 'node:fs';
import { enableCompileCache } from '../dist/src/compile-cache.js';

enableCompileCache(process.env);
// A terminal on stdin (someone trying VERSION by hand) must not block the read.
let stdin = '';
let unreadable;
if (!process.stdin.isTTY) {
  try {
    // One blocking read to the end: quicker than setting up process.stdin's stream.
    stdin = readFileSync(0, 'utf8');
  } catch (e) {
    if (e?.code !== 'EAGAIN')
      unreadable = e; // the plugin reports it (IoFailure)
    else {
      // a non-blocking stdin (rare): read it as a stream
      const parts = [];
      try {
        for await (const c of process.stdin) parts.push(c);
        stdin = Buffer.concat(parts).toString('utf8');
      } catch (e2) {
        unreadable = e2;
      }
    }
  }
}
let delegated;
if (unreadable === undefined) {
  const { delegate } = await import('../dist/src/node-api/delegate.js');
  delegated = await delegate(process.env, stdin, process.stdout, process.stderr);
}
if (delegated !== undefined) process.exitCode = delegated;
else {
  const { mainTabby } = await import('../dist/src/main.js');
  process.exitCode = await mainTabby({
    env: process.env,
    stdin:
      unreadable === undefined
        ? stdin
        : { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(unreadable) }) },
    stdout: process.stdout,
    stderr: process.stderr,
  });
}
