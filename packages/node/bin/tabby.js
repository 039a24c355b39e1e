#!/usr/bin/env node
// The tabby command: the datastore commands (apply, get, ipam, ...; @tabby/datastore's
// cli) and the node's (render, status, routes). Run `npm run build` first in a checkout.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { openBackend } from '@tabby/datastore';
import { run } from '@tabby/datastore/cli';
import { renderCommand } from '../dist/src/cli/render.js';
import { routesCommand, statusCommand } from '../dist/src/cli/status.js';

process.exitCode = await run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: (p) => (p === '-' ? Promise.resolve(readFileSync(0, 'utf8')) : readFile(p, 'utf8')),
  openBackend,
  commands: { render: renderCommand, status: statusCommand, routes: routesCommand },
});
