#!/usr/bin/env node
// The tabby CNI plugin; see src/main.ts. Run `npm run build` first in a checkout. The
// compile cache goes on first: it applies to what is loaded after it.
import { enableCompileCache } from '../dist/src/compile-cache.js';

enableCompileCache(process.env);
const { mainTabby } = await import('../dist/src/main.js');
process.exitCode = await mainTabby({
  env: process.env,
  // A terminal on stdin (someone trying VERSION by hand) must not block the read.
  stdin: process.stdin.isTTY ? '' : process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
