// charts/tabby, rendered by Helm's own engine (tools/helm-render: Helm v3.13.3's engine,
// chartutil, loader and strvals, built with Debian's Go) for the default values and a few
// value sets, then every document checked: built-in kinds against the Kubernetes OpenAPI
// schemas (kubernetes-models' validators), Tabby's kinds with the datastore's parseResource,
// the reflector's configuration with `bgp-ts check`, the conflist with the CNI plugin's
// parser, and the cross-references between them (volumes, service accounts, probes, RBAC
// against the API calls in the code). docs/helm-chart.md says what this does not cover.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument, isMap, isScalar, isSeq } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';
import * as clientNode from '@kubernetes/client-node';
import { parseResource } from '@tabby/datastore';
import { parseNetConf } from '@tabby/cni';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CHART = join(ROOT, 'charts/tabby');
const NAMESPACE = 'kube-system';

type Obj = Record<string, unknown>;
interface Doc {
  readonly source: string;
  readonly obj: Obj;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const kindOf = (d: Doc): string => str(d.obj['kind']);
const nameOf = (d: Doc): string => str(obj(d.obj['metadata'])['name']);
const label = (d: Doc): string => `${kindOf(d)} ${nameOf(d)} (${d.source})`;

/** The renderer binary, built (or taken from its cache) by tools/helm-render/build.sh. */
function helmRender(): string | { skip: string } {
  const r = spawnSync('bash', [join(ROOT, 'tools/helm-render/build.sh')], { encoding: 'utf8' });
  if (r.status === 3) {
    const why = `helm-render cannot be built here: ${r.stderr.trim()}`;
    if (process.env['CI'] === 'true') throw new Error(why);
    return { skip: why };
  }
  if (r.status !== 0) throw new Error(`tools/helm-render/build.sh failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

class RenderError extends Error {
  override readonly name = 'RenderError';
}

function render(
  bin: string,
  chart: string,
  values: string | undefined,
  extra: readonly string[] = [],
): Doc[] {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-chart-'));
  try {
    const args = ['tabby', chart, '-n', NAMESPACE, '--include-crds', ...extra];
    if (values !== undefined) {
      writeFileSync(join(dir, 'values.yaml'), values);
      args.push('-f', join(dir, 'values.yaml'));
    }
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new RenderError(r.stderr.trim());
    const docs: Doc[] = [];
    let source = '';
    for (const d of parseAllDocuments(r.stdout)) {
      if ('empty' in d) continue;
      assert.deepEqual(d.errors, [], `YAML errors in ${source}`);
      source =
        /^ ?Source: (\S+)/m.exec(`${d.commentBefore ?? ''}\n${d.contents?.commentBefore ?? ''}`)?.[1] ??
        source;
      const o: unknown = d.toJS();
      if (o === null || o === undefined) continue;
      assert.ok(isObj(o), `${source}: a document that is not a mapping`);
      docs.push({ source, obj: o });
    }
    return docs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- schemas ---------------------------------------------------------------------------

interface Validating {
  validate(): void;
}
type ModelClass = new (data: Obj) => Validating;

/** The kubernetes-models module of an apiVersion (its classes are named by kind). */
function modelModule(apiVersion: string): string {
  if (apiVersion === 'monitoring.coreos.com/v1')
    return '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
  return `kubernetes-models/${apiVersion}`;
}

async function validateBuiltIn(d: Doc): Promise<void> {
  const apiVersion = str(d.obj['apiVersion']);
  const mod = (await import(modelModule(apiVersion))) as Record<string, unknown>;
  const Model = mod[kindOf(d)] as ModelClass | undefined;
  assert.ok(Model !== undefined, `${label(d)}: no schema for ${apiVersion} ${kindOf(d)}`);
  try {
    new Model(d.obj).validate();
  } catch (e) {
    assert.fail(`${label(d)} does not match the Kubernetes schema: ${(e as Error).message}`);
  }
}

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}
type ClientModel = { getAttributeTypeMap(): readonly Attribute[] } | undefined;

/**
 * Fields the Kubernetes API does not know, by @kubernetes/client-node's generated models
 * (their attribute maps come from the same OpenAPI document). The OpenAPI schemas above do
 * not forbid unknown fields; the API server's strict field validation (kubectl's default)
 * refuses them, and so does this.
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const list = /^Array<(.+)>$/.exec(type);
  if (list !== null) return arr(value).flatMap((v, i) => unknownFields(v, list[1]!, `${path}[${i}]`));
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map !== null)
    return Object.entries(obj(value)).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  const model = (clientNode as unknown as Record<string, ClientModel>)[type];
  if (model === undefined || !isObj(value)) return []; // string, number, IntOrString, any, ...
  const attrs = model.getAttributeTypeMap();
  return Object.entries(value).flatMap(([k, v]) => {
    const a = attrs.find((x) => x.baseName === k);
    return a === undefined ? [`${path}.${k}`] : unknownFields(v, a.type, `${path}.${k}`);
  });
}

/** The client-node model of a built-in kind (apps/v1 DaemonSet: V1DaemonSet), if it has one. */
function clientModelName(d: Doc): string | undefined {
  const version = str(d.obj['apiVersion']).split('/').pop() ?? '';
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kindOf(d)}`;
  return (clientNode as unknown as Record<string, ClientModel>)[name] === undefined ? undefined : name;
}

function checkNoUnknownFields(d: Doc): void {
  const model = clientModelName(d);
  if (model === undefined) {
    // Only the Prometheus Operator's kinds have no client-node model.
    assert.equal(str(d.obj['apiVersion']), 'monitoring.coreos.com/v1', `${label(d)}: no client-node model`);
    return;
  }
  assert.deepEqual(
    unknownFields(d.obj, model, kindOf(d)),
    [],
    `${label(d)}: fields the Kubernetes API does not know`,
  );
}

function validateOurs(d: Doc): void {
  const r = parseResource(d.obj, label(d));
  if (!r.ok) assert.fail(`${label(d)}: ${r.issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`);
}

// ---- cross-references ------------------------------------------------------------------

const find = (docs: readonly Doc[], kind: string, name: string): Doc | undefined =>
  docs.find((d) => kindOf(d) === kind && nameOf(d) === name);

function podSpecs(docs: readonly Doc[]): { owner: Doc; spec: Obj; labels: Obj }[] {
  return docs
    .filter((d) => ['DaemonSet', 'Deployment'].includes(kindOf(d)))
    .map((d) => {
      const t = obj(obj(d.obj['spec'])['template']);
      return { owner: d, spec: obj(t['spec']), labels: obj(obj(t['metadata'])['labels']) };
    });
}

/** Every ConfigMap, Secret and ServiceAccount a pod names is rendered too. */
function checkPodReferences(docs: readonly Doc[]): void {
  for (const { owner, spec } of podSpecs(docs)) {
    const sa = str(spec['serviceAccountName']);
    if (sa !== '')
      assert.ok(find(docs, 'ServiceAccount', sa), `${label(owner)}: ServiceAccount ${sa} is not rendered`);
    for (const v of arr(spec['volumes']).map(obj)) {
      const cm = str(obj(v['configMap'])['name']);
      if (cm !== '')
        assert.ok(find(docs, 'ConfigMap', cm), `${label(owner)}: ConfigMap ${cm} is not rendered`);
      const secret = str(obj(v['secret'])['secretName']);
      if (secret !== '')
        assert.ok(find(docs, 'Secret', secret), `${label(owner)}: Secret ${secret} is not rendered`);
      // Keys a volume picks must be in the ConfigMap (a Secret's are filled by the cluster).
      for (const it of arr(obj(v['configMap'])['items']).map(obj)) {
        const data = obj(find(docs, 'ConfigMap', cm)?.obj['data']);
        assert.ok(str(it['key']) in data, `${label(owner)}: ConfigMap ${cm} has no key ${str(it['key'])}`);
      }
    }
    const names = new Set(arr(spec['volumes']).map((v) => str(obj(v)['name'])));
    for (const c of [...arr(spec['initContainers']), ...arr(spec['containers'])].map(obj)) {
      for (const m of arr(c['volumeMounts']).map(obj))
        assert.ok(
          names.has(str(m['name'])),
          `${label(owner)}: ${str(c['name'])} mounts unknown volume ${str(m['name'])}`,
        );
      // Probes name a port the container declares.
      const ports = new Map(arr(c['ports']).map((p) => [str(obj(p)['name']), obj(p)['containerPort']]));
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        const p = obj(c[probe]);
        const port = obj(p['httpGet'])['port'] ?? obj(p['tcpSocket'])['port'];
        if (port === undefined) continue;
        const declared = typeof port === 'number' ? [...ports.values()].includes(port) : ports.has(str(port));
        assert.ok(
          declared,
          `${label(owner)}: ${probe} names port ${JSON.stringify(port)}, not a port of ${str(c['name'])}`,
        );
      }
    }
  }
}

/** The daemon's HTTP address (TABBY_HTTP) is the port its probes and monitors use. */
function checkMetricsPort(docs: readonly Doc[], port: number): void {
  const ds = docs.find((d) => kindOf(d) === 'DaemonSet');
  assert.ok(ds, 'no DaemonSet');
  const c = arr(obj(obj(obj(ds.obj['spec'])['template'])['spec'])['containers']).map(obj)[0] ?? {};
  const env = new Map(arr(c['env']).map((e) => [str(obj(e)['name']), str(obj(e)['value'])]));
  const http = env.get('TABBY_HTTP') ?? '';
  assert.match(http, new RegExp(`^\\[.+\\]:${port}$`), `TABBY_HTTP ${http} does not serve port ${port}`);
  const metrics = arr(c['ports'])
    .map(obj)
    .find((p) => p['name'] === 'metrics');
  assert.equal(metrics?.['containerPort'], port);
  assert.equal(obj(obj(c['livenessProbe'])['httpGet'])['path'], '/healthz');
  assert.equal(obj(obj(c['readinessProbe'])['httpGet'])['path'], '/readyz');
}

/** A ServiceMonitor / PodMonitor / Service selects the DaemonSet's pods. */
function checkSelectors(docs: readonly Doc[]): void {
  const ds = podSpecs(docs).find((p) => kindOf(p.owner) === 'DaemonSet');
  assert.ok(ds);
  const matches = (sel: Obj): boolean => Object.entries(sel).every(([k, v]) => ds.labels[k] === v);
  for (const d of docs) {
    const spec = obj(d.obj['spec']);
    if (kindOf(d) === 'Service')
      assert.ok(matches(obj(spec['selector'])), `${label(d)} selects no tabby-node pod`);
    if (kindOf(d) === 'PodMonitor')
      assert.ok(matches(obj(obj(spec['selector'])['matchLabels'])), `${label(d)} selects no tabby-node pod`);
    if (kindOf(d) === 'ServiceMonitor') {
      const svc = docs.find((s) => kindOf(s) === 'Service');
      assert.ok(svc, `${label(d)} without a Service`);
      const want = obj(obj(spec['selector'])['matchLabels']);
      const have = obj(obj(svc.obj['metadata'])['labels']);
      assert.ok(
        Object.entries(want).every(([k, v]) => have[k] === v),
        `${label(d)} does not select ${label(svc)}`,
      );
      for (const ep of arr(spec['endpoints']).map(obj))
        assert.ok(
          arr(obj(svc.obj['spec'])['ports']).some((p) => obj(p)['name'] === ep['port']),
          `${label(d)}: endpoint port ${str(ep['port'])} is not a port of ${label(svc)}`,
        );
    }
  }
}

interface Rule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** The rules bound to a ServiceAccount, through (Cluster)RoleBindings, with each role's namespace. */
function rulesOf(docs: readonly Doc[], sa: string): { rule: Rule; namespace: string | undefined }[] {
  const out: { rule: Rule; namespace: string | undefined }[] = [];
  for (const b of docs.filter((d) => ['ClusterRoleBinding', 'RoleBinding'].includes(kindOf(d)))) {
    const subjects = arr(b.obj['subjects']).map(obj);
    if (
      !subjects.some(
        (s) => s['kind'] === 'ServiceAccount' && s['name'] === sa && s['namespace'] === NAMESPACE,
      )
    )
      continue;
    const ref = obj(b.obj['roleRef']);
    const role = find(docs, str(ref['kind']), str(ref['name']));
    assert.ok(role, `${label(b)}: ${str(ref['kind'])} ${str(ref['name'])} is not rendered`);
    const ns = kindOf(b) === 'RoleBinding' ? str(obj(b.obj['metadata'])['namespace']) : undefined;
    for (const r of arr(role.obj['rules'])) out.push({ rule: r as Rule, namespace: ns });
  }
  return out;
}

function allows(
  rules: readonly { rule: Rule; namespace: string | undefined }[],
  group: string,
  resource: string,
  verb: string,
  opts: { namespace?: string; name?: string } = {},
): boolean {
  return rules.some(
    ({ rule, namespace }) =>
      rule.apiGroups.includes(group) &&
      rule.resources.includes(resource) &&
      rule.verbs.includes(verb) &&
      (namespace === undefined || namespace === opts.namespace) &&
      (rule.resourceNames === undefined ||
        (opts.name !== undefined && rule.resourceNames.includes(opts.name))),
  );
}

/**
 * The Kubernetes API calls of the node daemon and the datastore's backend, each with the
 * source that makes it. `apiPathsInCode` below finds every API path in those sources, and a
 * test fails when one is not covered here: a new call needs its RBAC rule and a line here.
 */
const DAEMON_CALLS = [
  // packages/datastore/src/backends/kubernetes/backend.ts: get, list, watch, create, update
  // (PUT), delete (with preconditions); never patch or deletecollection.
  ...['get', 'list', 'watch', 'create', 'update', 'delete'].map((verb) => ({
    path: '/apis/${API_GROUP}/${CRD_VERSION}/',
    group: 'tabby.dev',
    resource: '*tabby',
    verb,
  })),
  // packages/node/src/kubernetes/objects-watcher.ts: list+watch of Nodes (metadata only),
  // Services, EndpointSlices; per-name Secrets in the daemon's namespace.
  { path: '/api/v1/nodes', group: '', resource: 'nodes', verb: 'list' },
  { path: '/api/v1/nodes', group: '', resource: 'nodes', verb: 'watch' },
  { path: '/api/v1/services', group: '', resource: 'services', verb: 'list' },
  { path: '/api/v1/services', group: '', resource: 'services', verb: 'watch' },
  {
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    group: 'discovery.k8s.io',
    resource: 'endpointslices',
    verb: 'list',
  },
  {
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    group: 'discovery.k8s.io',
    resource: 'endpointslices',
    verb: 'watch',
  },
  { path: '/api/v1/namespaces/${', group: '', resource: 'secrets', verb: 'list' },
  { path: '/api/v1/namespaces/${', group: '', resource: 'secrets', verb: 'watch' },
  // packages/node/src/kubernetes/node-condition.ts: strategic merge patch of nodes/<name>/status.
  { path: '/api/v1/nodes/${', group: '', resource: 'nodes/status', verb: 'patch' },
  // packages/node/src/kubernetes/startup-reader.ts: its Node and kube-system/kubeadm-config.
  { path: '/api/v1/nodes/${', group: '', resource: 'nodes', verb: 'get' },
  {
    path: '/api/v1/namespaces/kube-system/configmaps/kubeadm-config',
    group: '',
    resource: 'configmaps',
    verb: 'get',
  },
] as const;
/** Paths in the code that the daemon does not call: the CNI plugin's Namespace read (backend.ts namespaceLabels). */
const CNI_ONLY_PATHS = ['/api/v1/namespaces/${encodeURIComponent(name)}'];

function apiPathsInCode(): string[] {
  const dirs = ['packages/datastore/src/backends/kubernetes', 'packages/node/src/kubernetes'];
  const paths = new Set<string>();
  for (const dir of dirs)
    for (const f of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.ts'))) {
      // Code only: doc comments mention paths too.
      const text = readFileSync(join(ROOT, dir, f), 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l))
        .join('\n');
      for (const m of text.matchAll(/[`'](\/apis?\/[^`']*)[`']/g)) paths.add(m[1]!);
    }
  return [...paths].sort();
}

function checkRbac(docs: readonly Doc[], crdPlurals: readonly string[]): void {
  const ds = podSpecs(docs).find((p) => kindOf(p.owner) === 'DaemonSet');
  assert.ok(ds);
  const rules = rulesOf(docs, str(ds.spec['serviceAccountName']));
  for (const call of DAEMON_CALLS) {
    const resources = call.resource === '*tabby' ? crdPlurals : [call.resource];
    const opts =
      call.resource === 'secrets'
        ? { namespace: NAMESPACE }
        : call.resource === 'configmaps'
          ? { namespace: 'kube-system', name: 'kubeadm-config' }
          : {};
    for (const r of resources) {
      if (call.resource === 'secrets') continue; // per name: checkPasswordSecrets
      assert.ok(
        allows(rules, call.group, r, call.verb, opts),
        `tabby-node may not ${call.verb} ${call.group}/${r}`,
      );
    }
  }
  // Least privilege: nothing beyond those calls.
  const wanted = new Set(
    DAEMON_CALLS.flatMap((c) =>
      (c.resource === '*tabby' ? crdPlurals : [c.resource]).map((r) => `${c.group}/${r}/${c.verb}`),
    ),
  );
  for (const { rule } of rules)
    for (const g of rule.apiGroups)
      for (const r of rule.resources)
        for (const v of rule.verbs)
          assert.ok(
            wanted.has(`${g}/${r}/${v}`),
            `tabby-node is granted ${v} ${g}/${r}, which it never uses`,
          );
  checkPasswordSecrets(docs, rules);
  // ConfigMaps: kubeadm-config alone, in kube-system.
  for (const { rule, namespace } of rules.filter((r) => r.rule.resources.includes('configmaps'))) {
    assert.equal(namespace, 'kube-system');
    assert.deepEqual(rule.resourceNames, ['kubeadm-config']);
  }
}

/** Each Secret a BGP password names may be listed and watched by name, and no other. */
function checkPasswordSecrets(docs: readonly Doc[], rules: ReturnType<typeof rulesOf>): void {
  const named = new Set<string>();
  for (const d of docs.filter((x) => ['BGPPeer', 'BGPConfiguration'].includes(kindOf(x)))) {
    const spec = obj(d.obj['spec']);
    const ref = obj(obj(spec['password'] ?? spec['nodeMeshPassword'])['secretKeyRef']);
    if (str(ref['name']) !== '') named.add(str(ref['name']));
  }
  for (const n of named)
    for (const verb of ['list', 'watch'])
      assert.ok(
        allows(rules, '', 'secrets', verb, { namespace: NAMESPACE, name: n }),
        `tabby-node may not ${verb} Secret ${n}`,
      );
  for (const { rule } of rules.filter((r) => r.rule.resources.includes('secrets')))
    assert.deepEqual([...(rule.resourceNames ?? ['(every Secret)'])].sort(), [...named].sort());
}

function checkCni(docs: readonly Doc[]): void {
  const cm = docs.find((d) => kindOf(d) === 'ConfigMap' && 'cni-network-config' in obj(d.obj['data']));
  if (cm === undefined) return;
  const text = str(obj(cm.obj['data'])['cni-network-config'])
    .replaceAll('__KUBECONFIG_FILEPATH__', '/etc/cni/net.d/tabby-kubeconfig')
    .replaceAll('__NODENAME__', 'node-1');
  const list = JSON.parse(text) as Obj;
  const tabby = arr(list['plugins'])
    .map(obj)
    .find((p) => p['type'] === 'tabby');
  assert.ok(tabby, 'the conflist has no tabby plugin');
  // As the runtime passes it (SPEC.md: the plugin object with cniVersion and name).
  parseNetConf(JSON.stringify({ cniVersion: list['cniVersion'], name: list['name'], ...tabby }));
  // The plugin's own ServiceAccount can do what it does without the daemon.
  const rules = rulesOf(docs, `tabby-cni`);
  for (const r of ['ipamblocks', 'blockaffinities', 'ipamhandles', 'workloadendpoints'])
    for (const v of ['get', 'list', 'create', 'update', 'delete'])
      assert.ok(allows(rules, 'tabby.dev', r, v), `the CNI plugin may not ${v} ${r}`);
  assert.ok(allows(rules, '', 'namespaces', 'get'), 'the CNI plugin may not read Namespace labels');
}

function checkReflectors(docs: readonly Doc[]): void {
  for (const cm of docs.filter((d) => kindOf(d) === 'ConfigMap' && 'speaker.yaml' in obj(d.obj['data']))) {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-rr-'));
    try {
      writeFileSync(join(dir, 'speaker.yaml'), str(obj(cm.obj['data'])['speaker.yaml']));
      const r = spawnSync(
        process.execPath,
        [join(ROOT, 'packages/bgp/bin/bgp-ts.js'), 'check', '--config', join(dir, 'speaker.yaml')],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, `${label(cm)}: bgp-ts check: ${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ---- the value sets --------------------------------------------------------------------

const VALUE_SETS: Readonly<Record<string, string | undefined>> = {
  defaults: undefined,
  reflectors: `
routeReflectors:
  enabled: true
  reflectors:
    - { name: a, node: rr-1, address: 192.168.1.250 }
    - { name: b, node: rr-2, address: 192.168.2.250 }
  clientCIDRs: [192.168.0.0/16, 10.0.0.0/8]
  tolerations: [{ key: dedicated, operator: Equal, value: route-reflector, effect: NoSchedule }]
bgp:
  routeReflectorNodeLabel: route-reflector
`,
  torPeers: `
bgp:
  asNumber: 65010
  serviceClusterIPs: [10.96.0.0/12]
  serviceExternalIPs: [198.51.100.0/24]
  nodeMeshPassword: { secretName: bgp-mesh, key: password }
  peers:
    - { name: tor-a, peerIP: 192.168.1.1, asNumber: 65001, nodeSelector: "rack == 'a'", password: { secretName: bgp-passwords, key: tor-a }, maxRestartTime: 2m0s }
    - { name: tor-b, peerIP: "192.168.2.1:1790", asNumber: 65002, nodeSelector: "rack == 'b'", password: { secretName: bgp-passwords, key: tor-b }, ttlSecurity: 1 }
`,
  vxlanDualStack: `
pools:
  - { name: v4, cidr: 10.70.0.0/16, blockSize: 24, vxlanMode: Always, natOutgoing: true }
  - { name: v6, cidr: "fd00:10:70::/48", blockSize: 122, vxlanMode: CrossSubnet }
node: { ip6: autodetect }
cni: { assignIPv6: true, mtu: 1450, portmap: true }
`,
  monitoring: `
metrics:
  port: 9199
  bindAddress: 0.0.0.0
  serviceMonitor: { enabled: true, labels: { release: prometheus } }
  dashboard: { enabled: true }
logLevel: debug
`,
  podMonitorBgpOnly: `
metrics: { podMonitor: { enabled: true } }
node: { dataplane: none, mountLibModules: false }
cni: { install: false }
pools: []
`,
};

describe('charts/tabby rendered by Helm v3.13.3 engine (tools/helm-render)', () => {
  let bin: string | { skip: string };
  before(() => {
    bin = helmRender();
  });
  const crdPlurals = readdirSync(join(CHART, 'crds')).map((f) => f.replace(/\.tabby\.dev\.yaml$/, ''));

  for (const [name, values] of Object.entries(VALUE_SETS)) {
    it(`renders_${name}_and_every_document_is_valid_and_consistent`, async (t) => {
      if (typeof bin !== 'string') return t.skip(bin.skip);
      const docs = render(bin, CHART, values);
      const crds = docs.filter((d) => d.source.startsWith('tabby/crds/'));
      assert.equal(crds.length, crdPlurals.length, 'every CRD is in the output');
      for (const d of docs) {
        if (str(d.obj['apiVersion']).startsWith('tabby.dev/')) validateOurs(d);
        else {
          await validateBuiltIn(d);
          checkNoUnknownFields(d);
        }
      }
      // Names are unique per kind.
      const keys = docs.map((d) => `${kindOf(d)}/${nameOf(d)}`);
      assert.deepEqual(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        [],
      );
      checkPodReferences(docs);
      const port = /port: (\d+)/.exec(/metrics:[^]*?port: \d+/.exec(values ?? '')?.[0] ?? '')?.[1];
      checkMetricsPort(docs, port === undefined ? 9099 : Number(port));
      checkSelectors(docs);
      checkRbac(docs, crdPlurals);
      checkCni(docs);
      checkReflectors(docs);
    });
  }

  it('every_api_path_in_the_daemon_and_backend_code_is_one_the_rbac_check_knows', () => {
    const known = [...DAEMON_CALLS.map((c) => c.path), ...CNI_ONLY_PATHS];
    for (const p of apiPathsInCode())
      assert.ok(
        known.some((k) => p.startsWith(k)),
        `${p}: an API call the chart's RBAC check does not know; add its rule and a DAEMON_CALLS line`,
      );
  });

  it('reflectors_mesh_and_peers_follow_the_values', (t) => {
    if (typeof bin !== 'string') return t.skip(bin.skip);
    const docs = render(bin, CHART, VALUE_SETS['reflectors']);
    assert.equal(obj(find(docs, 'BGPConfiguration', 'default')?.obj['spec'])['nodeToNodeMeshEnabled'], false);
    for (const [n, ip] of [
      ['a', '192.168.1.250'],
      ['b', '192.168.2.250'],
    ] as const)
      assert.equal(obj(find(docs, 'BGPPeer', `route-reflector-${n}`)?.obj['spec'])['peerIP'], ip);
    // The DaemonSet stays off the reflectors' nodes (port 179 is theirs).
    const ds = docs.find((d) => kindOf(d) === 'DaemonSet');
    assert.match(JSON.stringify(ds?.obj), /"operator":"NotIn","values":\["rr-1","rr-2"\]/);
  });

  it('a_values_error_fails_the_render_with_its_message', (t) => {
    if (typeof bin !== 'string') return t.skip(bin.skip);
    assert.throws(
      () =>
        render(
          bin as string,
          CHART,
          'metrics: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } }',
        ),
      /enable one, not both/,
    );
    assert.throws(
      () => render(bin as string, CHART, 'routeReflectors: { enabled: true, clientCIDRs: [10.0.0.0/8] }'),
      /routeReflectors.enabled needs routeReflectors.reflectors/,
    );
    assert.throws(
      () => render(bin as string, CHART, 'bgp: { peers: [{ name: x, asNumber: 1 }] }'),
      /peerIP is required/,
    );
    // values.schema.json, which Helm checks before rendering.
    assert.throws(
      () => render(bin as string, CHART, 'node: { dataplane: ebpf }'),
      /node.dataplane must be one of/,
    );
    assert.throws(() => render(bin as string, CHART, 'bgp: { asNumber: abc }'), /bgp.asNumber/);
    assert.throws(
      () => render(bin as string, CHART, 'cni: { mtu: 1450, mut: 1 }'),
      /Additional property mut is not allowed/,
    );
  });

  it('a_broken_template_fails_the_render', (t) => {
    if (typeof bin !== 'string') return t.skip(bin.skip);
    const dir = mkdtempSync(join(tmpdir(), 'tabby-chart-broken-'));
    try {
      cpSync(CHART, join(dir, 'tabby'), { recursive: true });
      const f = join(dir, 'tabby/templates/daemonset.yaml');
      writeFileSync(f, readFileSync(f, 'utf8').replace('{{- end }}', '{{- end }}{{- end }}'));
      assert.throws(() => render(bin as string, join(dir, 'tabby'), undefined), RenderError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a_rendered_document_off_the_kubernetes_schema_fails_the_check', async () => {
    await assert.rejects(
      validateBuiltIn({
        source: 'test',
        obj: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: 'x' }] } },
      }),
      /does not match the Kubernetes schema/,
    );
    assert.throws(
      () =>
        validateOurs({
          source: 'test',
          obj: {
            apiVersion: 'tabby.dev/v1',
            kind: 'IPPool',
            metadata: { name: 'p' },
            spec: { cidr: '10.0.0.0/8', blockSize: 40 },
          },
        }),
      /blockSize/,
    );
    const ds = {
      source: 'test',
      obj: {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'x' },
        spec: {
          selector: { matchLabels: { a: 'b' } },
          template: {
            metadata: { labels: { a: 'b' } },
            spec: {
              containers: [
                { name: 'c', image: 'i', livenessProbe: { httpGet: { path: '/', port: 1, hots: 'x' } } },
              ],
            },
          },
        },
      },
    };
    await validateBuiltIn(ds); // the OpenAPI schema lets a misspelt field through
    assert.throws(
      () => checkNoUnknownFields(ds),
      /DaemonSet.spec.template.spec.containers\[0\].livenessProbe.httpGet.hots/,
    );
  });

  it('every_metric_the_dashboard_queries_is_documented_in_metrics_md', () => {
    const dash = JSON.parse(readFileSync(join(CHART, 'files/dashboard.json'), 'utf8')) as Obj;
    const documented = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
    const exprs = arr(dash['panels']).flatMap((p) => arr(obj(p)['targets']).map((t) => str(obj(t)['expr'])));
    assert.ok(exprs.length >= 10);
    for (const e of exprs)
      for (const [m] of e.matchAll(/\btabby_[a-z0-9_]+/g)) {
        // Histograms are queried by their _bucket series; prom-client's runtime metrics by the documented prefix.
        const base = m.replace(/_bucket$/, '');
        assert.ok(
          documented.includes(`\`${base}\``) ||
            (base.startsWith('tabby_bgp_nodejs_') && documented.includes('`tabby_bgp_nodejs_*`')),
          `the dashboard queries ${m}, which docs/metrics.md does not list`,
        );
      }
  });

  it('docs_helm_chart_md_lists_every_values_yaml_knob', () => {
    const table = valuesTable(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const doc = readFileSync(join(ROOT, 'docs/helm-chart.md'), 'utf8');
    const m = /<!-- values:start -->\n([^]*?)<!-- values:end -->/.exec(doc);
    assert.ok(m, 'docs/helm-chart.md has no <!-- values:start --> ... <!-- values:end --> section');
    if (process.env['UPDATE_CHART_DOCS'] === '1') {
      writeFileSync(
        join(ROOT, 'docs/helm-chart.md'),
        doc.replace(m[0], `<!-- values:start -->\n${table}<!-- values:end -->`),
      );
      return;
    }
    // Prettier pads the table's columns: compare cells, not spacing.
    const cells = (t: string): string =>
      t
        .split('\n')
        .map((l) =>
          l
            .replace(/\s+/g, ' ')
            .replace(/ ?\| ?/g, '|')
            .replace(/-{3,}/g, '---'),
        )
        .join('\n')
        .trim();
    assert.equal(cells(m[1]!), cells(table), 'docs/helm-chart.md is stale: run with UPDATE_CHART_DOCS=1');
  });
});

/** The `# --` comment before a key, on one line; '' when there is none. */
function docComment(map: YAMLMap, i: number): string {
  const pair = map.items[i] as Pair;
  // The yaml library keeps the comment before a map's first key on the map itself.
  const c = (
    (isScalar(pair.key) ? pair.key.commentBefore : undefined) ??
    (i === 0 ? map.commentBefore : undefined) ??
    ''
  ).trim();
  const at = c.lastIndexOf('-- ');
  return at < 0
    ? ''
    : c
        .slice(at + 3)
        .replace(/\s*\n\s*/g, ' ')
        .trim();
}

/**
 * The values table: one row per knob with its default and its `# --` comment. A map whose
 * keys carry no comments of their own is one knob (resources, a Secret reference); a map
 * with a comment and commented keys is a heading row and then its keys.
 */
function valuesTable(text: string): string {
  const rows: string[] = [];
  const cell = (v: string): string => v.replaceAll('|', '\\|');
  const walk = (map: YAMLMap, prefix: string): void => {
    for (const [i, pair] of map.items.entries()) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const described = docComment(map, i);
      const v = pair.value;
      if (isMap(v) && v.items.some((_, j) => docComment(v, j) !== '')) {
        if (described !== '') rows.push(`| \`${path}\` | | ${cell(described)} |`);
        walk(v, path);
        continue;
      }
      assert.ok(described !== '', `values.yaml: ${path} has no "# --" comment`);
      const def = JSON.stringify(isMap(v) || isSeq(v) || isScalar(v) ? v.toJSON() : null);
      rows.push(`| \`${path}\` | \`${cell(def)}\` | ${cell(described)} |`);
    }
  };
  const d = parseDocument(text);
  assert.ok(isMap(d.contents));
  walk(d.contents, '');
  return ['| key | default | meaning |', '| --- | --- | --- |', ...rows, ''].join('\n');
}
