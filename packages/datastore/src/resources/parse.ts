// The boundary: any document (a manifest, a file an operator edited, an object a backend
// returned) becomes a typed, defaulted, valid, canonical resource here, or a list of
// problems, each naming the resource, the field path and the reason. Nothing else in
// Tabby reads raw resource objects.
import type { Issue } from '../schema/index.js';
import { applyDefaults, checkNode, isPlainObject, joinPath } from '../schema/index.js';
import { validateSpec } from './define.js';
import type { KindDef } from './define.js';
import { KIND_INFO, KINDS, isKind } from './kinds.js';
import type { Kind } from './kinds.js';
import { API_VERSION, CALICO_API_VERSIONS } from './meta.js';
import type { ObjectMeta } from './meta.js';
import type { AnyKindResource, ResourceOf } from './registry.js';
import { KIND_DEFS } from './registry.js';

export interface ResourceIssue extends Issue {
  /** `IPPool default-ipv4-ippool`, or what is known of it (`IPPool (no name)`, `document 3`). */
  readonly resource: string;
}

export type ParseResult<R = AnyKindResource> =
  | { readonly ok: true; readonly resource: R }
  | { readonly ok: false; readonly issues: readonly ResourceIssue[] };

const META_FIELDS = new Set([
  'name',
  'namespace',
  'labels',
  'annotations',
  'resourceVersion',
  'uid',
  'creationTimestamp',
]);
/** Set by API servers and meaningless here: dropped on input rather than refused. */
const META_DROPPED = new Set(['generation', 'managedFields', 'selfLink', 'deletionGracePeriodSeconds']);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const stringMap = { type: 'map', values: { type: 'string' } } as const;

/**
 * Parses one document. `where` names it when it has no kind or name yet (e.g. `ippools.yaml
 * document 2`). Accepts our apiVersion and Calico's; the result always carries ours.
 */
export function parseResource(doc: unknown, where = 'document'): ParseResult {
  if (!isPlainObject(doc))
    return fail(where, '', 'must be a resource object (apiVersion, kind, metadata, spec)');
  const kind = doc['kind'];
  const meta = doc['metadata'];
  const name = isPlainObject(meta) && typeof meta['name'] === 'string' ? meta['name'] : undefined;
  const label = `${typeof kind === 'string' ? kind : where}${name === undefined ? ' (no name)' : ` ${name}`}`;
  const issues: Issue[] = [];
  const apiVersion = doc['apiVersion'];
  if (apiVersion !== API_VERSION && !CALICO_API_VERSIONS.includes(apiVersion as string))
    issues.push({
      path: 'apiVersion',
      reason: `must be ${[API_VERSION, ...CALICO_API_VERSIONS].join(' or ')}, not ${JSON.stringify(apiVersion)}`,
    });
  if (!isKind(kind)) {
    issues.push({ path: 'kind', reason: `must be one of ${KINDS.join(', ')}, not ${JSON.stringify(kind)}` });
    return { ok: false, issues: issues.map((i) => ({ ...i, resource: label })) };
  }
  for (const k of Object.keys(doc))
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(k))
      issues.push({ path: k, reason: 'is not a known field' });
  const metadata = parseMeta(kind, meta, issues);
  // `spec:` with nothing after it is YAML null: Calico's own manifests have it for an empty spec.
  const spec = doc['spec'] === undefined || doc['spec'] === null ? {} : structuredClone(doc['spec']);
  if (issues.length > 0 || metadata === undefined)
    return { ok: false, issues: issues.map((i) => ({ ...i, resource: label })) };
  // One kind at a time; the union of all KindDefs is too wide for TypeScript to call directly.
  const def = KIND_DEFS[kind] as unknown as KindDef<Kind, unknown>;
  applyDefaults(def.spec, spec);
  const r = { apiVersion: API_VERSION, kind, metadata, spec } as ResourceOf<typeof kind>;
  const specIssues = validateSpec(def, r);
  if (specIssues.length > 0) return { ok: false, issues: specIssues.map((i) => ({ ...i, resource: label })) };
  def.normalize?.(r);
  return { ok: true, resource: r as AnyKindResource };
}

/** parseResource for a known kind: a document of another kind is a problem. */
export function parseKind<K extends Kind>(kind: K, doc: unknown, where?: string): ParseResult<ResourceOf<K>> {
  const r = parseResource(doc, where);
  if (r.ok && r.resource.kind !== kind)
    return fail(`${r.resource.kind} ${r.resource.metadata.name}`, 'kind', `must be ${kind}`);
  return r as ParseResult<ResourceOf<K>>;
}

function parseMeta(kind: Kind, meta: unknown, issues: Issue[]): ObjectMeta | undefined {
  if (!isPlainObject(meta)) {
    issues.push({ path: 'metadata', reason: 'is required (an object with at least a name)' });
    return undefined;
  }
  const name = meta['name'];
  if (typeof name === 'boolean')
    issues.push({
      path: 'metadata.name',
      reason: `must be a string, not the boolean ${name} (YAML 1.1 reads y/n, yes/no, on/off unquoted as booleans: quote the name)`,
    });
  else if (typeof name !== 'string' || name === '')
    issues.push({ path: 'metadata.name', reason: 'is required' });
  else if (name.length > 253 || !DNS_SUBDOMAIN.test(name))
    issues.push({
      path: 'metadata.name',
      reason: `${JSON.stringify(name)} is not a valid name (lower-case letters, digits, '-' and '.', at most 253 characters)`,
    });
  const ns = meta['namespace'];
  if (KIND_INFO[kind].namespaced) {
    if (typeof ns !== 'string' || ns === '')
      issues.push({ path: 'metadata.namespace', reason: `is required: ${kind} is namespaced` });
    else if (ns.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns))
      issues.push({
        path: 'metadata.namespace',
        reason: `${JSON.stringify(ns)} is not a valid namespace name`,
      });
  } else if (ns !== undefined && ns !== '')
    issues.push({ path: 'metadata.namespace', reason: `must not be set: ${kind} is cluster-wide` });
  for (const k of ['labels', 'annotations'] as const)
    if (meta[k] !== undefined && meta[k] !== null)
      checkNode(stringMap, scalarsAsStrings(meta[k]), joinPath('metadata', k), issues);
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp'] as const)
    if (meta[k] !== undefined && meta[k] !== null && typeof meta[k] !== 'string')
      issues.push({ path: `metadata.${k}`, reason: 'must be a string' });
  for (const k of Object.keys(meta))
    if (!META_FIELDS.has(k) && !META_DROPPED.has(k))
      issues.push({ path: `metadata.${k}`, reason: 'is not a supported metadata field' });
  if (issues.length > 0) return undefined;
  const out: ObjectMeta = { name: name as string };
  if (typeof ns === 'string' && ns !== '') out.namespace = ns;
  for (const k of ['labels', 'annotations'] as const)
    if (isPlainObject(meta[k])) out[k] = scalarsAsStrings(meta[k]) as Record<string, string>;
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp'] as const)
    if (typeof meta[k] === 'string') out[k] = meta[k];
  return out;
}

/**
 * Label and annotation values are strings, but YAML reads `routeReflector: true` or
 * `rack: 1` as a boolean or a number; calicoctl takes them (Calico's own test manifests have
 * such labels), so booleans and numbers become their text. Anything else is left to fail.
 */
function scalarsAsStrings(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    out[k] = typeof x === 'boolean' || typeof x === 'number' ? String(x) : x;
  return out;
}

function fail(resource: string, path: string, reason: string): { ok: false; issues: ResourceIssue[] } {
  return { ok: false, issues: [{ resource, path, reason }] };
}
