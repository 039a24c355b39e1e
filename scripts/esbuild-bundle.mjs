// Bundles executables of this repository into one flat directory of ES module files with
// esbuild: the entries, the chunks they load on demand, the native addons they load and the
// data files their dependencies read at run time. Used by packages/cni/tools/bundle.mjs (the
// CNI executables) and packages/node/tools/bundle.mjs (tabby-node and the tabby CLI).
//
// Input is the compiled JavaScript (run `tsc -b` first). What does not survive bundling by
// itself, and is fixed here:
// - the addons' paths, written relative to each package's dist/ tree: rewritten to the
//   bundle's directory, and the .node files copied there;
// - etcd3's `${__dirname}/../proto/rpc.proto`: __dirname does not exist in an ES module, so
//   the path is rewritten to the bundle's directory and the .proto files copied there;
// - the deprecated built-in punycode module: replaced by the npm package (below).
// Each rewrite fails the build when its source no longer matches, so a dependency update
// cannot silently break the bundle.
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

/** A package's directory, resolved from `from` (workspace packages' exports omit package.json). */
function packageRoot(name, from) {
  const require = createRequire(join(from, 'package.json'));
  for (let d = dirname(require.resolve(name)); d !== dirname(d); d = dirname(d)) {
    try {
      if (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).name === name) return d;
    } catch {
      // no package.json here
    }
  }
  throw new Error(`cannot find the directory of ${name}`);
}

/**
 * Files rewritten on load: package, the file (below the package root), the text as written
 * there, its replacement, and what to copy into the bundle when that file is bundled
 * (package-relative source, name in the bundle).
 */
const REWRITES = [
  {
    pkg: '@tabby/netlink',
    file: 'dist/src/client/native.js',
    from: "'../../../build/Release/tabby_netlink.node'",
    to: "'./tabby_netlink.node'",
    copy: [['build/Release/tabby_netlink.node', 'tabby_netlink.node']],
  },
  {
    pkg: '@tabby/datastore',
    file: 'dist/src/backends/yaml/lock.js',
    from: "'../../../../build/Release/tabby_flock.node'",
    to: "'./tabby_flock.node'",
    copy: [['build/Release/tabby_flock.node', 'tabby_flock.node']],
  },
  {
    pkg: 'bgp-ts',
    file: 'dist/src/sockopt/native.js',
    from: "'../../../build/Release/bgp_sockopt.node'",
    to: "'./bgp_sockopt.node'",
    copy: [['build/Release/bgp_sockopt.node', 'bgp_sockopt.node']],
  },
  {
    // rpc.proto imports auth.proto and kv.proto from its own directory
    pkg: 'etcd3',
    file: 'lib/connection-pool.js',
    from: '`${__dirname}/../proto/rpc.proto`',
    // the banner's require() resolves beside the bundle file (import.meta would make esbuild
    // treat this CommonJS file as an ES module, without `exports`)
    to: "require.resolve('./etcd3-proto/rpc.proto')",
    copy: ['rpc.proto', 'auth.proto', 'kv.proto'].map((p) => [`proto/${p}`, `etcd3-proto/${p}`]),
  },
];

/**
 * Bundles `entryPoints` ({ name: path relative to pkgDir }) into `outdir` as <name>.mjs, and
 * `cjsEntryPoints` ({ name: { entry, external } }) as one CommonJS file each, <name>.cjs: for an
 * executable whose start decides its speed (Node 20 starts an ES module entry about 4 ms later),
 * with what it loads on demand left to the ES module files (`external`: the import paths, such
 * as './tabby-main.mjs', kept as they are). `interpreter`, when given, replaces the entries'
 * `#!/usr/bin/env node` line (an image without /usr/bin/env). Writes esbuild's metafile (both
 * builds') to `<outdir>.meta.json`; returns it.
 */
export async function bundle({ pkgDir, entryPoints, cjsEntryPoints = {}, outdir, interpreter }) {
  const rewrites = [];
  for (const r of REWRITES) {
    let root;
    try {
      root = packageRoot(r.pkg, pkgDir);
    } catch {
      continue; // not a dependency of this package
    }
    rewrites.push({ ...r, root, path: join(root, r.file) });
  }
  const plugin = {
    name: 'tabby-bundle-paths',
    setup(build) {
      for (const r of rewrites)
        build.onLoad(
          { filter: new RegExp(`${r.file.replaceAll('/', '[\\\\/]').replaceAll('.', '\\.')}$`) },
          (args) => {
            if (args.path !== r.path) return undefined;
            const src = readFileSync(args.path, 'utf8');
            if (!src.includes(r.from))
              throw new Error(
                `${r.pkg}: ${r.file} no longer contains ${r.from}; update scripts/esbuild-bundle.mjs`,
              );
            return { contents: src.replaceAll(r.from, r.to), loader: 'js' };
          },
        );
    },
  };

  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  // What both kinds of build share.
  const common = {
    absWorkingDir: pkgDir,
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    minifySyntax: true,
    minifyWhitespace: true,
    // Error classes and resource kinds are reported by name.
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  };
  const result = await esbuild.build({
    ...common,
    entryPoints,
    outExtension: { '.js': '.mjs' },
    chunkNames: '[name]-[hash]',
    splitting: true,
    format: 'esm',
    // CommonJS dependencies (yaml, ip-num, the etcd and Kubernetes clients) call require().
    banner: {
      js: "import { createRequire as __tabbyRequire } from 'node:module'; const require = __tabbyRequire(import.meta.url);",
    },
    // tr46 (node-fetch 2, under the Kubernetes client) requires the built-in punycode, which
    // Node deprecates (DEP0040) and warns about on stderr outside node_modules, as a bundle
    // is; the npm package of the same API (a root devDependency) goes in instead.
    alias: { punycode: 'punycode/' },
    plugins: [plugin],
  });

  for (const [name, { entry, external }] of Object.entries(cjsEntryPoints)) {
    const keep = new Set(external);
    const r = await esbuild.build({
      ...common,
      entryPoints: { [name]: entry },
      outExtension: { '.js': '.cjs' },
      format: 'cjs',
      // import.meta is empty in CommonJS: a file that needs it belongs behind `external`.
      logOverride: { 'empty-import-meta': 'error' },
      banner: { js: '#!/usr/bin/env node' },
      plugins: [
        plugin,
        {
          name: 'tabby-bundle-external',
          setup(build) {
            build.onResolve({ filter: /.*/ }, (args) =>
              keep.has(args.path) ? { path: args.path, external: true } : undefined,
            );
          },
        },
      ],
    });
    Object.assign(result.metafile.inputs, r.metafile.inputs);
    Object.assign(result.metafile.outputs, r.metafile.outputs);
    chmodSync(join(outdir, `${name}.cjs`), 0o755);
  }

  // Copy what the bundled files load, and only that.
  const inputs = new Set(Object.keys(result.metafile.inputs).map((i) => join(pkgDir, i)));
  for (const r of rewrites) {
    if (!inputs.has(r.path)) continue;
    for (const [src, dst] of r.copy) {
      mkdirSync(dirname(join(outdir, dst)), { recursive: true });
      copyFileSync(join(r.root, src), join(outdir, dst));
    }
  }
  if (interpreter !== undefined)
    for (const f of [
      ...Object.keys(entryPoints).map((name) => join(outdir, `${name}.mjs`)),
      ...Object.keys(cjsEntryPoints).map((name) => join(outdir, `${name}.cjs`)),
    ]) {
      const text = readFileSync(f, 'utf8');
      if (!text.startsWith('#!')) throw new Error(`${f}: the entry has no #! line to replace`);
      writeFileSync(f, `#!${interpreter}${text.slice(text.indexOf('\n'))}`);
      chmodSync(f, 0o755);
    }
  // Beside the directory, not in it: what the bundle tests check the chunk graph with.
  writeFileSync(
    `${outdir}.meta.json`,
    JSON.stringify({ outdir: relative(pkgDir, outdir), ...result.metafile }),
  );

  // What each entry loads before its first dynamic import.
  const outputs = result.metafile.outputs;
  const entries = new Set([
    ...Object.values(entryPoints),
    ...Object.values(cjsEntryPoints).map((c) => c.entry),
  ]);
  for (const [out, o] of Object.entries(outputs)) {
    if (o.entryPoint === undefined || !entries.has(o.entryPoint)) continue;
    const eager = new Set([out]);
    for (const f of eager)
      for (const i of outputs[f]?.imports ?? [])
        if (i.kind === 'import-statement' && !i.external) eager.add(i.path);
    const bytes = [...eager].reduce((sum, f) => sum + (outputs[f]?.bytes ?? 0), 0);
    console.log(`bundle: ${out}: ${(bytes / 1024).toFixed(0)} KiB in ${eager.size} file(s) at start`);
  }
  const total = readdirSync(outdir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);
  console.log(`bundle: ${relative(pkgDir, outdir)}: ${(total / 1024 / 1024).toFixed(1)} MiB in all`);
  return result.metafile;
}
