#!/usr/bin/env node
// `npm run bundle:node`: tabby-node (the daemon), tabby (the CLI) and bgp-ts (the standalone
// speaker the chart runs as a dedicated route reflector) as ES module files with esbuild, for
// the container image (images/tabby): dist/bundle/tabby-node.mjs, tabby.mjs and bgp-ts.mjs,
// the chunks they share and load on demand, the three native addons (netlink, flock, bgp
// socket options) and etcd3's .proto files, in one directory with no node_modules
// (scripts/esbuild-bundle.mjs). Install by copying the directory and symlinking the .mjs
// entries into a bin directory: Node follows the symlink to the real file, so the chunks and
// addons are found beside it.
//
// Input is the compiled JavaScript (run `tsc -b packages/node` first), entry bin/*.js.
//
// Usage: node packages/node/tools/bundle.mjs [--outdir DIR] [--interpreter PATH]
//   --interpreter: the entries' #! line (default `/usr/bin/env node`; the image has no env)
// esbuild's metafile goes to DIR.meta.json.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../../../scripts/esbuild-bundle.mjs';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const interpreter = arg('interpreter');
await bundle({
  pkgDir: PKG,
  entryPoints: { 'tabby-node': 'bin/tabby-node.js', tabby: 'bin/tabby.js', 'bgp-ts': '../bgp/bin/bgp-ts.js' },
  outdir: arg('outdir') ?? join(PKG, 'dist', 'bundle'),
  ...(interpreter !== undefined ? { interpreter } : {}),
});
