#!/usr/bin/env node
// Regenerates test/vectors/calico-confd/ from Calico's confd template tests.
// Usage: node tools/extract-calico-confd.mjs <calico git dir> <commit> [out dir]
//
// Calico's harness (confd/tests/test_suite_{common,etcd,kdd}.sh) builds the datastore up
// step by step with calicoctl/kubectl and compares confd's output with
// confd/tests/compiled_templates/<leaf>/ at each `test_confd_templates <leaf>`. State carries
// over from test to test (leftovers matter: see the notes in index.json), so this script runs the
// harness itself, once per datastore, with a small interpreter for the subset of bash the
// suite uses, over an in-memory model of what calicoctl, kubectl and the apiserver do. At each
// comparison it records the resources in effect and the environment of the running confd.
// Anything it does not understand stops it, and so does any calicoctl/kubectl command that
// would have failed (the real suite runs under `set -e`), which keeps the model honest.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const [gitDir, commit, outArg] = process.argv.slice(2);
if (gitDir === undefined || commit === undefined) {
  console.error('usage: extract-calico-confd.mjs <calico git dir> <commit> [out dir]');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const outDir = outArg ?? join(here, '..', 'test', 'vectors', 'calico-confd');

const git = (...args) =>
  execFileSync('git', ['--git-dir', gitDir, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
const gitBytes = (path) =>
  execFileSync('git', ['--git-dir', gitDir, 'show', `${commit}:${path}`], { maxBuffer: 1 << 28 });
const show = (path) => git('show', `${commit}:${path}`);
const TESTS = 'confd/tests';
const tree = new Set(git('ls-tree', '-r', '--name-only', commit, TESTS).split('\n').filter(Boolean));
/** The harness mounts confd/tests at /tests. */
const repoPath = (p) => {
  if (!p.startsWith('/tests/')) throw new Error(`path outside /tests: ${p}`);
  return `${TESTS}/${p.slice('/tests/'.length)}`;
};

// ---------------------------------------------------------------------------------------
// YAML documents with their text and origin

const NAMESPACED = new Set(['Secret', 'Service', 'Endpoints', 'EndpointSlice']);
const CALICO_GROUPS = ['projectcalico.org/v3', 'crd.projectcalico.org/v1'];

/** Splits a multi-document YAML text into documents, keeping each one's text and lines. */
function splitDocs(text, file, firstLine, fn) {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const docs = [];
  let start = 0;
  const flush = (end) => {
    let s = start;
    let e = end; // exclusive
    while (s < e && lines[s].trim() === '') s++;
    while (e > s && lines[e - 1].trim() === '') e--;
    const chunk = lines.slice(s, e).join('\n');
    const obj = chunk.trim() === '' ? null : parse(chunk);
    if (obj === null || obj === undefined) return; // kubectl and calicoctl skip empty documents
    if (typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string')
      throw new Error(`${file}:${firstLine + s}: document without kind or metadata.name`);
    const ns = NAMESPACED.has(obj.kind) ? (obj.metadata.namespace ?? 'default') : '';
    docs.push({
      kind: obj.kind,
      name: obj.metadata.name,
      ns,
      apiVersion: obj.apiVersion,
      obj,
      text: chunk + '\n',
      file,
      start: firstLine + s,
      end: firstLine + e - 1,
      fn,
    });
  };
  for (let i = 0; i < lines.length; i++) {
    if (/^---\s*$/.test(lines[i])) {
      flush(i);
      start = i + 1;
    }
  }
  flush(lines.length);
  return docs;
}
const keyOf = (d) => (d.ns === '' ? `${d.kind}/${d.name}` : `${d.kind}/${d.ns}/${d.name}`);
const isCalico = (d) => CALICO_GROUPS.includes(d.apiVersion);

// ---------------------------------------------------------------------------------------
// The shell: functions, statements, expansion

const SUITE = `${TESTS}/test_suite_common.sh`;
const suiteLines = show(SUITE).split('\n');

/** name -> { start, lines: [{ n, text }] } for every `name() {` ... `}` at column 0. */
const functions = new Map();
for (let i = 0; i < suiteLines.length; i++) {
  const m = /^([a-z_0-9]+)\(\) \{$/.exec(suiteLines[i]);
  if (m === null) continue;
  const body = [];
  let j = i + 1;
  for (; suiteLines[j] !== '}'; j++) {
    if (j >= suiteLines.length) throw new Error(`unterminated function ${m[1]}`);
    body.push({ n: j + 1, text: suiteLines[j] });
  }
  functions.set(m[1], { start: i + 1, end: j + 1, lines: body });
  i = j;
}

/** Parses lines into statements: cmd (with optional heredoc), if, for. */
function parseBlock(lines, from, until) {
  const out = [];
  let i = from;
  for (; i < lines.length; i++) {
    const { n, text } = lines[i];
    const t = text.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (until.includes(t)) return { stmts: out, next: i, stop: t };
    let m;
    if ((m = /^if (.*); then$/.exec(t)) !== null) {
      const a = parseBlock(lines, i + 1, ['else', 'fi']);
      let b = { stmts: [], next: a.next };
      if (a.stop === 'else') b = parseBlock(lines, a.next + 1, ['fi']);
      out.push({ type: 'if', n, cond: m[1], then: a.stmts, else: b.stmts });
      i = b.next;
    } else if ((m = /^for (\w+) in (.*); do$/.exec(t)) !== null) {
      const a = parseBlock(lines, i + 1, ['done']);
      out.push({ type: 'for', n, var: m[1], list: m[2], body: a.stmts });
      i = a.next;
    } else if (/<<\s*EOF\b/.test(t)) {
      const doc = [];
      let j = i + 1;
      for (; lines[j]?.text !== 'EOF'; j++) {
        if (j >= lines.length) throw new Error(`${SUITE}:${n}: unterminated heredoc`);
        doc.push(lines[j]);
      }
      out.push({ type: 'cmd', n, text: t, heredoc: doc });
      i = j;
    } else {
      out.push({ type: 'cmd', n, text: t });
    }
  }
  if (until.length > 0) throw new Error(`missing ${until.join('/')} after line ${lines[from - 1]?.n}`);
  return { stmts: out, next: i, stop: null };
}
const parsedFunctions = new Map();
function body(name) {
  if (!parsedFunctions.has(name)) {
    const f = functions.get(name);
    parsedFunctions.set(name, parseBlock(f.lines, 0, []).stmts);
  }
  return parsedFunctions.get(name);
}

/** Splits a command line into words, dropping quotes; both kinds expand later (the suite has no
 * $ inside single quotes that matters). No globbing or command substitution. */
function words(s) {
  const out = [];
  let cur = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === ' ' || c === '\t') {
      if (cur !== null) out.push(cur);
      cur = null;
    } else if (c === '"' || c === "'") {
      const j = s.indexOf(c, i + 1);
      if (j < 0) throw new Error(`unbalanced quote in ${s}`);
      cur = (cur ?? '') + s.slice(i + 1, j);
      i = j;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== null) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------
// The world: datastore, Kubernetes API, files, environment

/** Environment variables that change what confd writes (see NOTES.md). */
const OUTPUT_ENV = [
  'NODENAME',
  'CALICO_ROUTER_ID',
  'CALICO_ENDPOINT_STATUS_PATH_PREFIX',
  'CALICO_ADVERTISE_CLUSTER_IPS',
  'CALICO_K8S_NODE_REF',
  'NAMESPACE',
  'USE_POD_CIDR',
];
const STATUS_DIR = '/etc/calico/confd/endpoint-status';

class World {
  constructor(datastore) {
    this.datastore = datastore; // 'etcd' | 'kdd'
    this.calico = new Map();
    this.k8s = new Map();
    this.files = new Map();
    this.vars = new Map([['DATASTORE_TYPE', datastore === 'etcd' ? 'etcdv3' : 'kubernetes']]);
    this.vars.set('LOGPATH', `/tests/logs/${datastore}`);
    this.exported = new Set();
    this.confd = null; // { env, mode, n }
    this.snapshots = [];
    this.stack = [];
  }

  fail(n, msg) {
    throw new Error(`${this.datastore}: ${SUITE}:${n} (${this.stack.join(' > ')}): ${msg}`);
  }

  calicoctlApply(docs, n) {
    for (const d of docs) {
      if (!isCalico(d)) this.fail(n, `calicoctl apply of ${d.apiVersion} ${d.kind}`);
      if (this.datastore === 'kdd' && d.kind === 'Node' && !this.k8s.has(`Node/${d.name}`))
        this.fail(n, `calicoctl cannot create Node ${d.name} on KDD (no Kubernetes Node)`);
      this.calico.set(keyOf(d), d);
    }
  }

  calicoctlDelete(kind, name, n) {
    const key = `${kind}/${name}`;
    if (!this.calico.has(key)) this.fail(n, `calicoctl delete ${key}: no such resource`);
    if (kind === 'Node') {
      if (this.datastore === 'kdd') this.fail(n, 'calicoctl cannot delete Nodes on KDD');
      // libcalico-go/lib/clientv3/node.go Delete: also removes the node's BGPPeers
      // (spec.node), its BGPConfiguration node.<name> and its IPAM affinities. The affinities
      // survive here: their blocks were never written, so releaseBlockAffinity stops at
      // "block does not exist" (libcalico-go/lib/ipam/ipam.go ReleaseHostAffinities).
      for (const [k, d] of this.calico)
        if (d.kind === 'BGPPeer' && d.obj.spec?.node === name) this.calico.delete(k);
      this.calico.delete(`BGPConfiguration/node.${name}`);
    }
    this.calico.delete(key);
  }

  kubectl(verb, docs, n) {
    for (const d of docs) {
      if (isCalico(d)) this.fail(n, `kubectl ${verb} of a Calico resource`);
      const key = keyOf(d);
      const has = this.k8s.has(key);
      if (verb === 'create' && has) this.fail(n, `kubectl create ${key}: exists`);
      if (verb === 'replace' && !has) this.fail(n, `kubectl replace ${key}: not found`);
      if (verb === 'delete') {
        if (!has) this.fail(n, `kubectl delete ${key}: not found`);
        this.k8s.delete(key);
        // A KDD Calico Node is the Kubernetes Node: it goes with it.
        if (d.kind === 'Node' && this.datastore === 'kdd') this.calico.delete(`Node/${d.name}`);
        // No kube-controller-manager runs beside the test apiserver (lib.Makefile
        // run-k8s-apiserver), so nothing garbage-collects Endpoints or EndpointSlices.
      } else this.k8s.set(key, d);
    }
  }

  snapshot(leaf, n) {
    if (this.confd === null) this.fail(n, `test_confd_templates ${leaf} with no confd run`);
    this.snapshots.push({
      leaf,
      datastore: this.datastore,
      mode: this.confd.mode,
      confdLine: this.confd.n,
      line: n,
      stack: [...this.stack],
      env: { ...this.confd.env },
      calico: new Map(this.calico),
      k8s: new Map(this.k8s),
      files: new Map(this.files),
    });
  }

  expand(s, n, args) {
    return s.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_m, braced, plain) => {
      const name = braced ?? plain;
      if (/^\d+$/.test(name)) {
        const v = args[Number(name) - 1];
        if (v === undefined) this.fail(n, `$${name} unset`);
        return v;
      }
      if (name === 'CALICOCTL') return 'calicoctl';
      if (!this.vars.has(name)) this.fail(n, `variable ${name} unset`);
      return this.vars.get(name);
    });
  }

  cond(c, n, args) {
    let m;
    if ((m = /^\[\[? -f (\S+) \]\]?$/.exec(c)) !== null)
      return tree.has(repoPath(this.expand(m[1], n, args)));
    if ((m = /^\[ "?([^" ]+)"? = "?([^" ]+)"? \]$/.exec(c)) !== null)
      return this.expand(m[1], n, args) === this.expand(m[2], n, args);
    if ((m = /^\[ "\$(\w+)" \]$/.exec(c)) !== null) return (this.vars.get(m[1]) ?? '') !== '';
    return this.fail(n, `condition not understood: ${c}`);
  }

  call(name, args, n) {
    if (!functions.has(name)) this.fail(n, `unknown function ${name}`);
    this.stack.push(name);
    switch (name) {
      case 'test_confd_templates':
        // Compares every file under compiled_templates/$1 (test_suite_common.sh
        // compare_templates, with `diff --ignore-blank-lines`).
        this.snapshot(args[0].replace(/\/+$/, ''), n);
        break;
      case 'expect_peerings': // counts `protocol bgp` lines; no expected files
      case 'start_typha': // transport only
      case 'kill_typha':
        break;
      default:
        this.run(body(name), args);
    }
    this.stack.pop();
  }

  run(stmts, args) {
    for (const s of stmts) {
      if (s.type === 'if') this.run(this.cond(s.cond, s.n, args) ? s.then : s.else, args);
      else if (s.type === 'for') {
        let m;
        let items;
        if ((m = /^\$\(seq (\d+) (\d+)\)$|^`seq (\d+) (\S+)`$/.exec(s.list)) !== null) {
          const lo = Number(m[1] ?? m[3]);
          const hi = Number(this.expand(m[2] ?? m[4], s.n, args));
          items = Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i));
        } else this.fail(s.n, `loop list not understood: ${s.list}`);
        for (const v of items) {
          this.vars.set(s.var, v);
          this.run(s.body, args);
        }
      } else this.command(s, args);
    }
  }

  heredocDocs(s, args, fn) {
    const text = s.heredoc.map((l) => this.expand(l.text, l.n, args)).join('\n') + '\n';
    return splitDocs(text, SUITE, s.heredoc[0]?.n ?? s.n + 1, fn);
  }

  command(s, args) {
    const { n } = s;
    const fn = this.stack.at(-1);
    // `|| true` and `&` change nothing here: failures stop the run, and order is kept.
    const text = s.text.replace(/\s*\|\| true$/, '').replace(/\s&$/, '');
    let w = words(text)
      .filter((x) => !/^(\d?>|>|<<)/.test(x)) // redirections and heredoc markers
      .map((x) => this.expand(x, n, args));
    // Leading NAME=value words: an assignment, or the environment of one command.
    const prefix = new Map();
    while (w.length > 0 && /^[A-Za-z_]\w*=/.test(w[0])) {
      const [k, ...v] = w[0].split('=');
      prefix.set(k, v.join('='));
      w = w.slice(1);
    }
    if (w.length === 0) {
      // Values built from command output (`...`, $!) are not reproduced; the only one read
      // back is password_logs, which the suite requires to be empty.
      for (const [k, v] of prefix) this.vars.set(k, /`|\$!/.test(s.text) ? '' : v);
      return;
    }
    const [cmd, ...rest] = w;
    switch (cmd) {
      case 'echo':
      case 'sleep':
      case 'kill':
      case 'disown':
      case 'mkdir':
      case 'set':
        return;
      case 'rm': {
        for (const p of rest.filter((x) => !x.startsWith('-')))
          if (p.startsWith(STATUS_DIR))
            for (const f of [...this.files.keys()]) if (f.startsWith(p)) this.files.delete(f);
        return;
      }
      case 'cat': {
        const m = />\s*(\S+)$/.exec(s.text);
        if (s.heredoc === undefined || m === null) this.fail(n, `cat not understood: ${s.text}`);
        const start = s.heredoc[0].n;
        this.files.set(this.expand(m[1], n, args), {
          text: s.heredoc.map((l) => this.expand(l.text, l.n, args)).join('\n') + '\n',
          origin: { file: SUITE, start, end: start + s.heredoc.length - 1, fn, what: `file ${m[1]}` },
        });
        return;
      }
      case 'export': {
        if (rest[0] === '-n') {
          this.exported.delete(rest[1]);
          return;
        }
        for (const a of rest) {
          const [k, ...v] = a.split('=');
          if (v.length > 0) this.vars.set(k, v.join('='));
          this.exported.add(k);
        }
        return;
      }
      case 'unset':
        for (const k of rest) {
          this.vars.delete(k);
          this.exported.delete(k);
        }
        return;
      case 'eval':
        this.call(rest[0], [], n);
        return;
      case 'confd': {
        const env = {};
        for (const k of this.exported) if (this.vars.has(k)) env[k] = this.vars.get(k);
        for (const [k, v] of prefix) env[k] = v;
        this.confd = { env, mode: rest.includes('-onetime') ? 'oneshot' : 'daemon', n };
        return;
      }
      case 'calicoctl':
        return this.calicoctl(rest, s, args, fn);
      case 'kubectl':
        return this.kubectlCmd(rest, s, args, fn);
      default:
        if (functions.has(cmd)) return this.call(cmd, rest, n);
        this.fail(n, `command not understood: ${s.text}`);
    }
  }

  fileDocs(p, fn) {
    const file = repoPath(p);
    return splitDocs(show(file), file, 1, fn);
  }

  calicoctl(w, s, args, fn) {
    const rest = w.filter((x) => x !== '--allow-version-mismatch');
    const [verb, a, b] = rest;
    if (verb === 'apply' && a === '-f') {
      const docs = b === '-' ? this.heredocDocs(s, args, fn) : this.fileDocs(b, fn);
      return this.calicoctlApply(docs, s.n);
    }
    if (verb === 'delete' && a === '-f') {
      for (const d of this.fileDocs(b, fn)) this.calicoctlDelete(d.kind, d.name, s.n);
      return;
    }
    const kinds = { node: 'Node', bgppeer: 'BGPPeer', bgpfilter: 'BGPFilter', ippool: 'IPPool' };
    if (verb === 'delete' && kinds[a] !== undefined && rest.length === 3)
      return this.calicoctlDelete(kinds[a], b, s.n);
    this.fail(s.n, `calicoctl not understood: ${s.text}`);
  }

  kubectlCmd(w, s, args, fn) {
    const [verb, a, b, c, d] = w;
    if (['apply', 'create', 'replace', 'delete'].includes(verb) && a === '-f' && w.length === 3) {
      const docs = b === '-' ? this.heredocDocs(s, args, fn) : this.fileDocs(b, fn);
      return this.kubectl(verb, docs, s.n);
    }
    if (verb === 'delete' && (a === 'secret' || a === 'node')) {
      const ns = a === 'secret' ? (c === '-n' ? d : 'default') : '';
      const kind = a === 'secret' ? 'Secret' : 'Node';
      return this.kubectl('delete', [{ kind, name: b, ns, apiVersion: 'v1', obj: {} }], s.n);
    }
    this.fail(s.n, `kubectl not understood: ${s.text}`);
  }
}

// ---------------------------------------------------------------------------------------
// The two suites' preambles (test_suite_etcd.sh, test_suite_kdd.sh), checked line by line

function requireLines(file, wanted) {
  const lines = show(file).split('\n');
  return wanted.map((w) => {
    const i = lines.findIndex((l) => l.trim() === w);
    if (i < 0) throw new Error(`${file} no longer has: ${w}`);
    return i + 1;
  });
}

const ETCD_SUITE = `${TESTS}/test_suite_etcd.sh`;
const KDD_SUITE = `${TESTS}/test_suite_kdd.sh`;
const ETCD_BLOCK = `${TESTS}/mock_data/etcd/block`;
const KDD_IPAM = `${TESTS}/mock_data/kdd/ipam.yaml`;
const KDD_NODES = `${TESTS}/mock_data/kdd/nodes.yaml`;
const ipamDocs = splitDocs(show(KDD_IPAM), KDD_IPAM, 1, null);

function runEtcd() {
  const world = new World('etcd');
  requireLines(ETCD_SUITE, [
    'etcdctl del --prefix /calico',
    'etcdctl put $data > /dev/null 2>&1',
    'done < /tests/mock_data/etcd/block',
    'execute_test_suite',
  ]);
  // The etcd preload is block affinities only (/calico/ipam/v2/host/<host>/ipv4/block/<cidr>).
  // Record them as the same BlockAffinity documents the KDD preload uses, after checking that
  // each etcd key has exactly one such document with the same host, CIDR and state.
  const lines = show(ETCD_BLOCK).split('\n').filter(Boolean);
  const used = [];
  for (const [i, line] of lines.entries()) {
    const m = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv4\/block\/([\d.]+)-(\d+) (\{.*\})$/.exec(line);
    if (m === null) throw new Error(`${ETCD_BLOCK}:${i + 1}: not understood`);
    const state = JSON.parse(m[4]).state ?? '';
    const cidr = `${m[2]}/${m[3]}`;
    const d = ipamDocs.filter(
      (x) => x.obj.spec.node === m[1] && x.obj.spec.cidr === cidr && (x.obj.spec.state ?? '') === state,
    );
    if (d.length !== 1) throw new Error(`${ETCD_BLOCK}:${i + 1}: no matching document in ${KDD_IPAM}`);
    used.push({ ...d[0], etcdKey: { file: ETCD_BLOCK, start: i + 1, end: i + 1 } });
  }
  world.calicoctlApply(used, 0);
  world.call('execute_test_suite', [], 0);
  return world;
}

function runKdd() {
  const world = new World('kdd');
  requireLines(KDD_SUITE, [
    'kubectl apply -f /tests/mock_data/kdd/nodes.yaml',
    'kubectl apply -f /tests/mock_data/kdd/ipam.yaml',
    '$CALICOCTL apply -f /tests/mock_data/calicoctl/explicit_peering/specific_node/input.yaml',
    '$CALICOCTL delete -f /tests/mock_data/calicoctl/explicit_peering/specific_node/delete.yaml',
    'execute_test_suite',
  ]);
  world.kubectl('apply', splitDocs(show(KDD_NODES), KDD_NODES, 1, null), 0);
  world.calicoctlApply(ipamDocs, 0); // BlockAffinity CRDs, applied with kubectl
  world.stack.push('test_suite_kdd.sh');
  world.calicoctlApply(
    world.fileDocs('/tests/mock_data/calicoctl/explicit_peering/specific_node/input.yaml', null),
    0,
  );
  for (const d of world.fileDocs(
    '/tests/mock_data/calicoctl/explicit_peering/specific_node/delete.yaml',
    null,
  ))
    world.calicoctlDelete(d.kind, d.name, 0);
  world.stack.pop();
  world.call('execute_test_suite', [], 0);
  return world;
}

// ---------------------------------------------------------------------------------------
// Output

const KIND_ORDER = ['BGPConfiguration', 'Node', 'BGPPeer', 'BGPFilter', 'IPPool', 'BlockAffinity'];
const K8S_ORDER = ['Node', 'Secret', 'Service', 'EndpointSlice', 'Endpoints'];
const rank = (order, d) => {
  const i = order.indexOf(d.kind);
  return i < 0 ? order.length : i;
};
const byKindName = (order) => (a, b) =>
  rank(order, a) - rank(order, b) ||
  a.ns.localeCompare(b.ns) ||
  a.name.localeCompare(b.name, 'en', { numeric: true });
const yamlOf = (docs) => docs.map((d) => d.text).join('---\n');

function envOf(snap) {
  const env = {};
  for (const k of OUTPUT_ENV) if (snap.env[k] !== undefined) env[k] = snap.env[k];
  return env;
}

/** Kubernetes objects confd cannot see any more: Endpoints (it reads EndpointSlices,
 * routes.go) and EndpointSlices whose Service is gone (routes.go getServiceForEndpoints). */
function inert(snap, k) {
  const d = snap.k8s.get(k);
  if (d === undefined) return false;
  if (d.kind === 'Endpoints') return true;
  const svc = d.obj.metadata?.labels?.['kubernetes.io/service-name'];
  return d.kind === 'EndpointSlice' && !snap.k8s.has(`Service/${d.ns}/${svc}`);
}

/** What differs between the chosen snapshot and another comparison of the same leaf,
 * leaving out the KDD preload (Kubernetes Nodes, the virtual "loadbalancer" affinity) and
 * inert Kubernetes leftovers, which README.md describes once. */
function diff(a, b) {
  const out = [];
  const keys = (m) => [...m.keys()];
  for (const k of new Set([...keys(a.calico), ...keys(b.calico)])) {
    const x = a.calico.get(k);
    const y = b.calico.get(k);
    if (x?.text === y?.text) continue;
    if (
      b.datastore === 'kdd' &&
      a.datastore === 'etcd' &&
      x === undefined &&
      k === 'BlockAffinity/loadbalancer-192-168-200-1-32'
    )
      continue;
    out.push(`${x === undefined ? '+' : y === undefined ? '-' : '~'}${k}`);
  }
  for (const k of new Set([...keys(a.k8s), ...keys(b.k8s)])) {
    const x = a.k8s.get(k);
    const y = b.k8s.get(k);
    if (x?.text === y?.text) continue;
    if (k.startsWith('Node/') && (x ?? y).file === KDD_NODES) continue;
    if ((x === undefined || inert(a, k)) && (y === undefined || inert(b, k))) continue;
    out.push(`${x === undefined ? '+' : y === undefined ? '-' : '~'}k8s ${k}`);
  }
  for (const k of new Set([...keys(a.files), ...keys(b.files)]))
    if (a.files.get(k)?.text !== b.files.get(k)?.text) out.push(`file ${k}`);
  const ea = JSON.stringify(envOf(a));
  const eb = JSON.stringify(envOf(b));
  if (ea !== eb) out.push(`env ${eb}`);
  return out;
}

/** One line per origin; documents of one file applied by one function in a row share a line. */
function sourceLines(leaf, snap) {
  const sh = (n) => SUITE.split('/').at(-1) + ':' + n;
  const lines = [`${TESTS}/compiled_templates/${leaf}/ expected output (six files, copied unchanged)`];
  lines.push(
    `${SUITE}:${snap.line} ${snap.stack.join(' > ')}: compared here (${snap.datastore}, confd ${snap.mode} mode started at ${sh(snap.confdLine)})`,
  );
  const origins = [];
  for (const d of [...snap.calico.values(), ...snap.k8s.values()])
    origins.push({
      file: d.file,
      start: d.start,
      end: d.end,
      fn: d.fn,
      what: `${isCalico(d) ? '' : 'k8s '}${keyOf(d)}`,
    });
  for (const f of snap.files.values()) origins.push(f.origin);
  origins.sort(
    (x, y) => x.file.localeCompare(y.file) || String(x.fn).localeCompare(String(y.fn)) || x.start - y.start,
  );
  const gap = (file, from, to) => {
    const text = (cache.get(file) ?? cache.set(file, show(file).split('\n')).get(file)).slice(from, to - 1);
    return text.every((l) => /^\s*(---\s*)?$/.test(l));
  };
  // Documents written from one heredoc in a loop share their range: one line for them all.
  // Then neighbours in one file, applied by one function, with only separators between.
  const groups = [];
  for (const o of origins) {
    const last = groups.at(-1);
    if (
      last !== undefined &&
      last.file === o.file &&
      last.fn === o.fn &&
      last.start === o.start &&
      last.end === o.end
    )
      last.what.push(o.what);
    else groups.push({ ...o, what: [o.what] });
  }
  const merged = [];
  for (const g of groups) {
    const last = merged.at(-1);
    const single = g.what.length === 1 && last?.loop === false;
    if (
      single &&
      last.file === g.file &&
      last.fn === g.fn &&
      g.start > last.end &&
      gap(g.file, last.end, g.start)
    ) {
      last.end = g.end;
      last.what.push(...g.what);
    } else merged.push({ ...g, loop: g.what.length > 1 });
  }
  for (const m of merged) {
    const shown = m.what.length > 8 ? [...m.what.slice(0, 3), `... ${m.what.length} in all`] : m.what;
    const range = m.start === m.end ? `${m.start}` : `${m.start}-${m.end}`;
    lines.push(`${m.file}:${range}${m.fn ? ` ${m.fn}` : ''}: ${shown.join(', ')}`);
  }
  if (snap.datastore === 'etcd')
    lines.push(
      `${ETCD_BLOCK}:1-6 test_suite_etcd.sh: the same six kube-master affinities as etcd keys (what the etcd run loads)`,
    );
  return lines.join('\n') + '\n';
}
const cache = new Map();

/** What the snapshots cannot say by themselves, per scenario (checked by hand against the
 * expected files; keep each to what a reimplementation must know). */
const YES_TRUE =
  'Node label `route-reflector: yes` must read as the string "true": calicoctl parses YAML 1.1, and the peerSelector `route-reflector == \'true\'` matches kube-master only that way (the expected peers prove it).';
const HAND_NOTES = {
  'mesh/static-routes':
    'The Service status.loadBalancer in kubernetes.yaml never reaches the apiserver (kubectl cannot write status; the source says so), so only spec counts. The apiserver fills spec.clusterIPs and spec.ipFamilies from spec.clusterIP (dual-stack range 10.101.0.0/16,fd00:96::/112, lib.Makefile run-k8s-apiserver); confd matches EndpointSlice addressType against ipFamilies, which is why service-v6-1 (IPv6 Service, IPv4 slice) is not advertised. The `- {}` entries in serviceClusterIPs/serviceLoadBalancerIPs are ignored.',
  'mesh/static-routes-exclude-node':
    'kube-master carries node.kubernetes.io/exclude-from-external-load-balancers: "true": no service routes are advertised, but the reject (kernel programming) entries for the service CIDRs stay.',
  'mesh/static-routes-no-ipv4-address':
    "kube-master has no BGP address, so CALICO_ROUTER_ID=10.10.10.10 is set for this run (test_suite_common.sh:644). Its kubectl-input.yaml writes v1 Endpoints, which confd no longer reads (EndpointSlices only, routes.go); the route 10.101.0.101/32 comes from EndpointSlices left over from the static-routes and static-routes-exclude-node tests (service-1, service-1-def: kube-master), which nothing deleted (kubectl-delete.yaml removes only Services and no controller-manager runs). service-2's leftover slice is on kube-node-1, so 10.101.0.102 is not advertised.",
  'mesh/password/step1':
    'Also compared twice later in the same test with the same expected output: after my-secrets-1 is replaced with only key b (test_suite_common.sh:1068-1080, password key a missing) and after the Secret is deleted (:1083-1086). Both are worth rendering too.',
  'mesh/hash':
    'CALICO_ROUTER_ID=hash: the router id is derived from NODENAME (template_funcs.go hashToIPv4). etcd only (test_router_id_hash is in the etcd list).',
  'explicit_peering/local_bgp_peer':
    'The local workload peers come from the two endpoint status files in endpoint-status/ (written by the test under $CALICO_ENDPOINT_STATUS_PATH_PREFIX/endpoint-status/, read by local_bgp_peer_watcher.go), not from the datastore; the BGPPeers select them by name (bgpPeerName) through localWorkloadSelector. KDD only.',
  'password-deadlock':
    'KDD only: 99 Kubernetes Nodes and Calico Nodes, each with a BGPPeer to 10.24.0.2 using my-secrets-1/a, all written before confd starts (with Typha) as node1.',
  'reachable_by/route_reflectors': YES_TRUE,
  'next_hop_mode/route_reflectors': YES_TRUE,
  'reverse_peering/auto': `${YES_TRUE} KDD only.`,
  'reverse_peering/manual': `${YES_TRUE} KDD only.`,
  'password/step1':
    'etcd only: calicoctl cannot create Nodes node1..node4 on KDD. NODENAME=node1; no Secrets yet, so no passwords.',
};

function main() {
  const worlds = [runEtcd(), runKdd()];
  const snaps = worlds.flatMap((w) => w.snapshots);
  const leaves = [
    ...new Set(
      [...tree]
        .filter((p) => p.startsWith(`${TESTS}/compiled_templates/`) && p.endsWith('.cfg'))
        .map((p) => dirname(p).slice(`${TESTS}/compiled_templates/`.length)),
    ),
  ].sort();
  // Generated content only: README.md and NOTES.md beside it are written by hand.
  mkdirSync(outDir, { recursive: true });
  for (const e of readdirSync(outDir, { withFileTypes: true }))
    if (e.isDirectory()) rmSync(join(outDir, e.name), { recursive: true });
  const index = [];
  const unreferenced = [];
  for (const leaf of leaves) {
    const all = snaps.filter((s) => s.leaf === leaf);
    if (all.length === 0) {
      unreferenced.push(leaf);
      continue;
    }
    const datastores = [...new Set(all.map((s) => s.datastore))].sort();
    // The first comparison on etcd if there is one (pure Calico resources), else on KDD.
    const snap = all.find((s) => s.datastore === 'etcd') ?? all[0];
    const dir = join(outDir, leaf);
    mkdirSync(join(dir, 'expected'), { recursive: true });
    const cfgs = [...tree].filter((p) => dirname(p) === `${TESTS}/compiled_templates/${leaf}`).sort();
    if (cfgs.length !== 6) throw new Error(`${leaf}: ${cfgs.length} expected files`);
    for (const p of cfgs) writeFileSync(join(dir, 'expected', p.split('/').at(-1)), gitBytes(p));
    writeFileSync(
      join(dir, 'resources.yaml'),
      yamlOf([...snap.calico.values()].sort(byKindName(KIND_ORDER))),
    );
    if (snap.k8s.size > 0)
      writeFileSync(join(dir, 'kubernetes.yaml'), yamlOf([...snap.k8s.values()].sort(byKindName(K8S_ORDER))));
    for (const [path, f] of snap.files) {
      if (!path.startsWith(`${STATUS_DIR}/`)) throw new Error(`${leaf}: unexpected file ${path}`);
      mkdirSync(join(dir, 'endpoint-status'), { recursive: true });
      writeFileSync(join(dir, 'endpoint-status', path.slice(STATUS_DIR.length + 1)), f.text);
    }
    writeFileSync(join(dir, 'env.json'), JSON.stringify(envOf(snap), null, 2) + '\n');
    writeFileSync(join(dir, 'SOURCE'), sourceLines(leaf, snap));

    const notes = [];
    if (HAND_NOTES[leaf] !== undefined) notes.push(HAND_NOTES[leaf]);
    const counts = new Map();
    for (const s of all)
      counts.set(`${s.datastore} ${s.mode}`, (counts.get(`${s.datastore} ${s.mode}`) ?? 0) + 1);
    notes.push(
      `Compared ${all.length}x (${[...counts].map(([k, v]) => `${k} ${v}x`).join(', ')}); snapshot from the first ${snap.datastore} one (${SUITE.split('/').at(-1)}:${snap.line}).`,
    );
    const extra = new Map();
    for (const o of all.filter((s) => s !== snap)) {
      const d = diff(snap, o);
      if (d.length === 0) continue;
      const k = d.join(', ');
      if (!extra.has(k)) extra.set(k, `${o.datastore} ${o.mode} at ${SUITE.split('/').at(-1)}:${o.line}`);
    }
    if (extra.size === 0 && all.length > 1)
      notes.push(
        'All comparisons see the same resources (apart from the KDD preload and inert Kubernetes leftovers; README).',
      );
    for (const [d, where] of extra) notes.push(`The comparison on ${where} sees other resources: ${d}.`);
    index.push({ scenario: leaf, datastores, notes: notes.join(' ') });
  }
  if (unreferenced.length > 0)
    throw new Error(`expected outputs never compared by the harness: ${unreferenced.join(', ')}`);
  for (const leaf of Object.keys(HAND_NOTES))
    if (!leaves.includes(leaf)) throw new Error(`hand note for unknown leaf ${leaf}`);
  writeFileSync(join(outDir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  writeFileSync(join(outDir, 'LICENSE'), gitBytes('LICENSE.md'));
  console.log(`${index.length} scenarios written to ${outDir}`);
}

main();
