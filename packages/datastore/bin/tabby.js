#!/usr/bin/env node
// The tabby command (datastore and IPAM); see src/cli/main.ts. Run `npm run build` first in a checkout.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { openBackend } from '../dist/src/backends/open.js';
import { run } from '../dist/src/cli/main.js';

process.exitCode = await run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: (p) => (p === '-' ? Promise.resolve(readFileSync(0, 'utf8')) : readFile(p, 'utf8')),
  openBackend,
});
