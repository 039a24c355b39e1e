#!/usr/bin/env node
// npm start: a route reflector and three tabby-node processes on 127.0.0.x (src/demo/cluster.ts).
// --once: stop after converging; --loopback: no namespaces even as root. Run `npm run build` first in a checkout.
import { runDemo } from '../dist/src/demo/cluster.js';

process.exitCode = await runDemo({
  once: process.argv.includes('--once'),
  loopback: process.argv.includes('--loopback'),
});
