#!/usr/bin/env node
// The tabby CNI plugin; see src/entry.ts and src/main.ts. Run `npm run build` first in a
// checkout. ADD, DEL and CHECK go whole to tabby-node when it runs (src/node-api/delegate.ts);
// the plugin itself is loaded, after the compile cache goes on, only when it does not. The
// bundle's entry is tools/tabby-entry.mjs, the same steps as one CommonJS file.
import { runTabby } from '../dist/src/entry.js';

process.exitCode = await runTabby(() => import('../dist/src/main.js'));
