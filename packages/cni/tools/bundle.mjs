#!/usr/bin/env node
// `npm run bundle:cni`: the two CNI executables as single ES module files with esbuild, for
// start-up speed (a runtime waits on every ADD): dist/bundle/tabby.mjs and tabby-ipam.mjs,
// the chunks they load on demand (the datastore, each datastore backend, the kernel
// dataplane), the native addons and etcd3's .proto files, all in one directory
// (scripts/esbuild-bundle.mjs). Install by copying the directory (e.g. to /opt/tabby/cni)
// and symlinking the two .mjs files into the CNI bin directory as `tabby` and `tabby-ipam`:
// Node follows the symlink to the real file, so the chunks and addons are found beside it.
//
// Input is the compiled JavaScript (run `tsc -b packages/cni` first), entry bin/*.js.
//
// Usage: node packages/cni/tools/bundle.mjs [--outdir DIR]; esbuild's metafile goes to DIR.meta.json.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../../../scripts/esbuild-bundle.mjs';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const i = process.argv.indexOf('--outdir');
await bundle({
  pkgDir: PKG,
  entryPoints: { tabby: 'bin/tabby.js', 'tabby-ipam': 'bin/tabby-ipam.js' },
  outdir: i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : join(PKG, 'dist', 'bundle'),
});
