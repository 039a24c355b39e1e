#!/usr/bin/env node
// The bgp-ts command; see src/cli/main.ts. Run `npm run build` first in a checkout.
import { readFileSync } from 'node:fs';
import { run } from '../dist/src/cli/main.js';

const code = await run({
  argv: process.argv.slice(2),
  readStdin: async () => readFileSync(0, 'utf8'),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
});
process.exitCode = code;
