#!/usr/bin/env node
// tabby-node, the per-node daemon (src/main.ts). Run `npm run build` first in a checkout.
import { main } from '../dist/src/main.js';

const code = await main(process.argv.slice(2), process.env);
process.exitCode = code;
// Everything is stopped; should a handle still hold the process, it ends anyway (as PID 1 in
// a container a hung exit would keep the pod from restarting).
setTimeout(() => process.exit(code), 2000).unref();
