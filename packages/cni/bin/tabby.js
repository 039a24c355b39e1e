#!/usr/bin/env node
// The tabby CNI plugin; see src/main.ts. Run `npm run build` first in a checkout.
import { mainTabby } from '../dist/src/main.js';

process.exitCode = await mainTabby({
  env: process.env,
  // A terminal on stdin (someone trying VERSION by hand) must not block the read.
  stdin: process.stdin.isTTY ? '' : process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
