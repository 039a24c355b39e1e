#!/usr/bin/env node
// tabby-node, the per-node daemon (src/main.ts). Run `npm run build` first in a checkout.
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv.slice(2), process.env);
