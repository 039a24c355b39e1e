#!/usr/bin/env node
// `npm run bundle:cni`: the two CNI executables with esbuild, for start-up speed (a runtime
// waits on every ADD): dist/bundle/tabby.cjs (one CommonJS file: the way to tabby-node) and
// tabby-ipam.mjs, the ES module chunks they load on demand (the plugin proper, the datastore,
// each datastore backend, the kernel dataplane), the native addons and etcd3's .proto files,
// all in one directory (scripts/esbuild-bundle.mjs). Install by copying the directory (e.g. to
// /opt/tabby/cni) and symlinking tabby.cjs and tabby-ipam.mjs into the CNI bin directory as
// `tabby` and `tabby-ipam`: Node follows the symlink to the real file, so the chunks and addons
// are found beside it.
//
// Input is the compiled JavaScript (run `tsc -b packages/cni` first): tools/tabby-entry.mjs,
// dist/src/main.js and bin/tabby-ipam.js.
//
// Usage: node packages/cni/tools/bundle.mjs [--outdir DIR]; esbuild's metafile goes to DIR.meta.json.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../../../scripts/esbuild-bundle.mjs';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const i = process.argv.indexOf('--outdir');
await bundle({
  pkgDir: PKG,
  // tabby: one CommonJS file that hands ADD, DEL and CHECK to tabby-node (src/entry.ts), and
  // loads the plugin proper (tabby-main.mjs and its chunks) only when the daemon does not.
  entryPoints: { 'tabby-main': 'dist/src/main.js', 'tabby-ipam': 'bin/tabby-ipam.js' },
  cjsEntryPoints: { tabby: { entry: 'tools/tabby-entry.mjs', external: ['./tabby-main.mjs'] } },
  outdir: i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : join(PKG, 'dist', 'bundle'),
});
