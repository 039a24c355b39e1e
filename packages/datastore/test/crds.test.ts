// The CRDs in charts/tabby/crds are generated from the resource schemas: this fails when
// they have drifted (run `npm run gen:crds`), and checks they are structural schemas the
// API server accepts.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { KINDS, KIND_INFO, allCrds, renderCrd } from '../src/resources/index.js';

const DIR = new URL('../../../../charts/tabby/crds/', import.meta.url);

/** Kubernetes' structural-schema rules that matter for us: every node typed, no $ref, objects with properties or additionalProperties. */
function structuralProblems(node: Record<string, unknown>, path: string, out: string[]): void {
  if (node['x-kubernetes-int-or-string'] === true) return;
  if (node['x-kubernetes-preserve-unknown-fields'] === true && node['type'] === 'object') return;
  if (typeof node['type'] !== 'string') out.push(`${path}: no type`);
  if ('$ref' in node) out.push(`${path}: $ref`);
  if (node['type'] === 'object') {
    const props = node['properties'] as Record<string, Record<string, unknown>> | undefined;
    const add = node['additionalProperties'] as Record<string, unknown> | undefined;
    if (props !== undefined && add !== undefined)
      out.push(`${path}: both properties and additionalProperties`);
    for (const [k, v] of Object.entries(props ?? {})) structuralProblems(v, `${path}.${k}`, out);
    if (add !== undefined) structuralProblems(add, `${path}{}`, out);
    for (const r of (node['required'] as string[] | undefined) ?? [])
      if (props?.[r] === undefined) out.push(`${path}: required ${r} is not a property`);
  }
  if (node['type'] === 'array') {
    const items = node['items'] as Record<string, unknown> | undefined;
    if (items === undefined) out.push(`${path}: array without items`);
    else structuralProblems(items, `${path}[]`, out);
  }
}

describe('CRDs', () => {
  it('the_checked_in_crds_equal_what_the_schemas_generate', () => {
    const want = new Map(allCrds().map((c) => [`${c.metadata.name}.yaml`, renderCrd(c)]));
    const have = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
    assert.deepEqual(have.sort(), [...want.keys()].sort(), 'one file per kind, no strays');
    for (const [file, text] of want)
      assert.equal(
        readFileSync(new URL(file, DIR), 'utf8'),
        text,
        `${file} has drifted: run npm run gen:crds`,
      );
  });

  it('every_kind_has_a_crd_with_its_plural_scope_and_a_structural_schema', () => {
    for (const kind of KINDS) {
      const crd = allCrds().find((c) => c.metadata.name === `${KIND_INFO[kind].plural}.tabby.dev`);
      assert.ok(crd !== undefined, kind);
      const doc = parse(renderCrd(crd)) as {
        spec: { scope: string; versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
      };
      assert.equal(doc.spec.scope, KIND_INFO[kind].namespaced ? 'Namespaced' : 'Cluster');
      const problems: string[] = [];
      structuralProblems(doc.spec.versions[0]!.schema.openAPIV3Schema, kind, problems);
      assert.deepEqual(problems, []);
    }
  });

  it('cross_field_rules_reach_the_api_server_as_cel', () => {
    const peers = allCrds().find((c) => c.metadata.name === 'bgppeers.tabby.dev')!;
    const text = renderCrd(peers);
    assert.match(text, /x-kubernetes-validations:/);
    assert.match(text, /peerIP and peerSelector cannot both be set/);
  });
});
