#!/usr/bin/env node
// `npm run bundle:cni`: the two CNI executables as single ES module files with esbuild, for
// start-up speed (a runtime waits on every ADD): dist/bundle/tabby.mjs and tabby-ipam.mjs,
// the chunks they load on demand (the datastore, each datastore backend, the kernel
// dataplane) and the native addons, all in one flat directory. Install by copying the
// directory (e.g. to /opt/tabby/cni) and symlinking the two .mjs files into the CNI bin
// directory as `tabby` and `tabby-ipam`: Node follows the symlink to the real file, so the
// chunks and addons are found beside it.
//
// Input is the compiled JavaScript (run `tsc -b packages/cni` first), entry bin/*.js.
// The addons' paths, written relative to each package's dist/ tree, are rewritten to the
// bundle's directory; the build fails when a rewrite no longer matches its source.
//
// Usage: node packages/cni/tools/bundle.mjs [--outdir DIR]; esbuild's metafile goes to DIR.meta.json.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(join(PKG, 'package.json'));
const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const outdir = arg('outdir') ?? join(PKG, 'dist', 'bundle');

/** A workspace package's directory (their exports do not include package.json). */
function packageRoot(name) {
  for (let d = dirname(require.resolve(name)); d !== dirname(d); d = dirname(d)) {
    try {
      if (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).name === name) return d;
    } catch {
      // no package.json here
    }
  }
  throw new Error(`cannot find the directory of ${name}`);
}

/** The addons: package, the file that loads it, the path as written there, the .node file. */
const ADDONS = [
  {
    pkg: '@tabby/netlink',
    loader: 'dist/src/client/native.js',
    from: "'../../../build/Release/tabby_netlink.node'",
    file: 'build/Release/tabby_netlink.node',
  },
  {
    pkg: '@tabby/datastore',
    loader: 'dist/src/backends/yaml/lock.js',
    from: "'../../../../build/Release/tabby_flock.node'",
    file: 'build/Release/tabby_flock.node',
  },
].map((a) => {
  const root = packageRoot(a.pkg);
  return { ...a, root, loaderPath: join(root, a.loader), name: a.file.split('/').at(-1) };
});

/** Rewrites each addon path to `./<name>.node` beside the bundle file that loads it. */
const addonPaths = {
  name: 'tabby-addon-paths',
  setup(build) {
    for (const a of ADDONS)
      build.onLoad(
        { filter: new RegExp(`${a.loader.replaceAll('/', '[\\\\/]').replaceAll('.', '\\.')}$`) },
        (args) => {
          if (args.path !== a.loaderPath) return undefined;
          const src = readFileSync(args.path, 'utf8');
          if (!src.includes(a.from))
            throw new Error(
              `${a.pkg}: ${a.loader} no longer loads its addon from ${a.from}; update tools/bundle.mjs`,
            );
          return { contents: src.replaceAll(a.from, `'./${a.name}'`), loader: 'js' };
        },
      );
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: PKG,
  entryPoints: { tabby: 'bin/tabby.js', 'tabby-ipam': 'bin/tabby-ipam.js' },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifySyntax: true,
  minifyWhitespace: true,
  // Error classes and resource kinds are reported by name.
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (yaml, ip-num, the etcd and Kubernetes clients) call require().
  banner: {
    js: "import { createRequire as __tabbyRequire } from 'node:module'; const require = __tabbyRequire(import.meta.url);",
  },
  plugins: [addonPaths],
});
for (const a of ADDONS) copyFileSync(join(a.root, a.file), join(outdir, a.name));
// Beside the directory, not in it: what test/bundle.test.ts checks the chunk graph with.
writeFileSync(`${outdir}.meta.json`, JSON.stringify({ outdir: relative(PKG, outdir), ...result.metafile }));

// What each entry loads before its first dynamic import (the compile cache switch).
const outputs = result.metafile.outputs;
for (const [out, o] of Object.entries(outputs)) {
  if (o.entryPoint === undefined || !o.entryPoint.startsWith('bin/')) continue;
  const eager = new Set([out]);
  for (const f of eager)
    for (const i of outputs[f]?.imports ?? [])
      if (i.kind === 'import-statement' && !i.external) eager.add(i.path);
  const bytes = [...eager].reduce((sum, f) => sum + (outputs[f]?.bytes ?? 0), 0);
  console.log(`bundle: ${out}: ${(bytes / 1024).toFixed(0)} KiB in ${eager.size} file(s) at start`);
}
