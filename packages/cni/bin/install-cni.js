#!/usr/bin/env node
// install-cni: puts the tabby CNI plugins on the host, as Calico's install-cni does
// (cni-plugin/pkg/install/install.go, v3.31.7): run once by the chart's init container.
// Plain Node, no dependencies: it runs from the image as /opt/tabby/bin/install-cni.
//
// The plugins are Node programs (the bundle of `npm run bundle:cni`), so the host gets the
// bundle and the Node binary that runs this script, in a directory named by their content
// hash, and two small wrappers in the CNI bin directory that exec them. Every file is written
// to a temporary name and renamed into place (atomic, as Calico's copyFileAndPermissions), and
// the wrappers are switched only once the new directory is complete; the previous directory
// is kept for plugin calls still running from it, older ones are removed.
//
// Contract (environment; host paths are seen in this container under HOST_PREFIX):
//   HOST_PREFIX              where the host's directories are mounted here (default /host)
//   CNI_BIN_DIR              host's CNI executables directory (default /opt/cni/bin)
//   CNI_NET_DIR              host's CNI configuration directory (default /etc/cni/net.d)
//   CNI_CONF_NAME            conflist file name (default 10-tabby.conflist)
//   CNI_NETWORK_CONFIG_FILE  the conflist template (required). Placeholders replaced:
//                            __KUBECONFIG_FILEPATH__ (CNI_NET_DIR/tabby-kubeconfig),
//                            __NODENAME__ (KUBERNETES_NODE_NAME, required if used)
//   TABBY_HOST_DIR           host directory for the bundle and Node (default /opt/tabby)
//   CNI_BUNDLE_DIR           the bundle in the image (default /opt/tabby/cni)
//   NODE_BINARY              the Node binary to copy (default: the one running this)
//   CNI_TOKEN_DIR            `token` and `ca.crt` of the plugin's ServiceAccount (default
//                            /var/run/secrets/tabby-cni); with KUBERNETES_SERVICE_HOST and
//                            KUBERNETES_SERVICE_PORT they make CNI_NET_DIR/tabby-kubeconfig.
//                            Without a token the kubeconfig is not written (and a template
//                            that uses __KUBECONFIG_FILEPATH__ is an error).
// Exit status 0 when done, 1 with the reason on stderr.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PLUGINS = { tabby: 'tabby.cjs', 'tabby-ipam': 'tabby-ipam.mjs' };
const KUBECONFIG_NAME = 'tabby-kubeconfig';

export class InstallError extends Error {
  name = 'InstallError';
}

/** Writes `data` to `path` through a temporary file and a rename. */
function writeAtomic(path, data, mode) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask applies to writeFileSync's mode
  renameSync(tmp, path);
}

function listFiles(dir, prefix = '') {
  const out = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : join(prefix, e.name);
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** The kubeconfig of Calico's calculateKubeconfig: the service address, the CA, a token. */
export function kubeconfigText(host, port, caPem, token) {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return [
    '# Kubeconfig for the tabby CNI plugin, written by install-cni.',
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: local',
    '    cluster:',
    `      server: https://${h}:${port}`,
    `      certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '  - name: tabby-cni',
    '    user:',
    `      token: ${JSON.stringify(token.trim())}`,
    'contexts:',
    '  - name: tabby-cni',
    '    context: { cluster: local, user: tabby-cni }',
    'current-context: tabby-cni',
    '',
  ].join('\n');
}

/** Does the install; returns what it wrote (host paths), for the log. */
export function install(env) {
  const prefix = env.HOST_PREFIX ?? '/host';
  const binDir = env.CNI_BIN_DIR ?? '/opt/cni/bin';
  const netDir = env.CNI_NET_DIR ?? '/etc/cni/net.d';
  const confName = env.CNI_CONF_NAME ?? '10-tabby.conflist';
  const hostDir = env.TABBY_HOST_DIR ?? '/opt/tabby';
  const bundle = env.CNI_BUNDLE_DIR ?? '/opt/tabby/cni';
  const nodeBinary = env.NODE_BINARY ?? process.execPath;
  const tokenDir = env.CNI_TOKEN_DIR ?? '/var/run/secrets/tabby-cni';
  const templateFile = env.CNI_NETWORK_CONFIG_FILE;
  if (templateFile === undefined || templateFile === '')
    throw new InstallError('CNI_NETWORK_CONFIG_FILE is not set: the conflist template is required');
  const here = (hostPath) => join(prefix, hostPath);
  for (const [name, file] of Object.entries(PLUGINS))
    if (!existsSync(join(bundle, file)))
      throw new InstallError(`${join(bundle, file)} (the ${name} plugin) is missing from the bundle`);
  for (const d of [binDir, netDir])
    if (!existsSync(here(d))) throw new InstallError(`${here(d)} (host ${d}) is not mounted`);

  // 1. The bundle and Node, in a directory named by their content.
  const files = listFiles(bundle);
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(readFileSync(join(bundle, f)));
  hash.update(readFileSync(nodeBinary));
  const version = `cni-${hash.digest('hex').slice(0, 12)}`;
  const target = join(hostDir, version);
  mkdirSync(here(hostDir), { recursive: true });
  if (!existsSync(here(target))) {
    const tmp = here(`${target}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    for (const f of files) {
      mkdirSync(join(tmp, f, '..'), { recursive: true });
      copyFileSync(join(bundle, f), join(tmp, f));
      chmodSync(join(tmp, f), statSync(join(bundle, f)).mode & 0o777);
    }
    copyFileSync(nodeBinary, join(tmp, 'node'));
    chmodSync(join(tmp, 'node'), 0o755);
    renameSync(tmp, here(target));
  }
  // 2. The wrappers, switched atomically to the new directory.
  const written = [target];
  for (const [name, file] of Object.entries(PLUGINS)) {
    const script = `#!/bin/sh\n# Installed by tabby's install-cni.\nexec ${target}/node ${target}/${file} "$@"\n`;
    writeAtomic(here(join(binDir, name)), script, 0o755);
    written.push(join(binDir, name));
  }
  // Keep the previous version (a plugin may still run from it), remove older ones.
  const versions = readdirSync(here(hostDir))
    .filter((n) => /^cni-[0-9a-f]{12}(\.tmp-\d+)?$/.test(n) && n !== version)
    .map((n) => ({ n, t: statSync(here(join(hostDir, n))).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const old of versions.slice(1)) rmSync(here(join(hostDir, old.n)), { recursive: true, force: true });

  // 3. The kubeconfig, from the plugin's ServiceAccount token.
  const kubeconfigPath = join(netDir, KUBECONFIG_NAME);
  const tokenFile = join(tokenDir, 'token');
  const haveToken = existsSync(tokenFile);
  if (haveToken) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (host === undefined || host === '' || port === undefined || port === '')
      throw new InstallError('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set with a token');
    const ca = readFileSync(join(tokenDir, 'ca.crt'));
    writeAtomic(here(kubeconfigPath), kubeconfigText(host, port, ca, readFileSync(tokenFile, 'utf8')), 0o600);
    written.push(kubeconfigPath);
  }
  // 4. The conflist, last: the runtime considers the node's network ready once it is there.
  let conf = readFileSync(templateFile, 'utf8');
  if (conf.includes('__KUBECONFIG_FILEPATH__')) {
    if (!haveToken)
      throw new InstallError(`the template uses __KUBECONFIG_FILEPATH__ but there is no ${tokenFile}`);
    conf = conf.replaceAll('__KUBECONFIG_FILEPATH__', kubeconfigPath);
  }
  if (conf.includes('__NODENAME__')) {
    const node = env.KUBERNETES_NODE_NAME;
    if (node === undefined || node === '')
      throw new InstallError('the template uses __NODENAME__ but KUBERNETES_NODE_NAME is not set');
    conf = conf.replaceAll('__NODENAME__', node);
  }
  try {
    JSON.parse(conf);
  } catch (e) {
    // Not the text: it may hold credentials (Calico does not log it either).
    throw new InstallError(`the conflist is not valid JSON: ${e.message}`);
  }
  writeAtomic(here(join(netDir, confName)), conf, 0o600);
  written.push(join(netDir, confName));
  return written;
}

// Run as a program (also through a symlink such as /opt/tabby/bin/install-cni), not when imported.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    for (const p of install(process.env)) console.log(`install-cni: wrote ${p}`);
  } catch (e) {
    console.error(`install-cni: ${e instanceof InstallError ? e.message : e.stack}`);
    process.exitCode = 1;
  }
}
