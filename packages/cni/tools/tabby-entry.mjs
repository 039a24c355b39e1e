// The bundle's `tabby` executable (dist/bundle/tabby.cjs, built as CommonJS by tools/bundle.mjs):
// src/entry.ts's steps, with the plugin proper in the bundle's ES module chunks, loaded only
// when tabby-node does not take the invocation.
import { runTabby } from '../dist/src/entry.js';

runTabby(() => import('./tabby-main.mjs')).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    // The plugin reports its own failures as CNI errors: this is a bundle that cannot load.
    process.stderr.write(`tabby: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
