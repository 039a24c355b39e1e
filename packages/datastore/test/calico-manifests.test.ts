// Calico's own manifests (the calicoctl inputs of its confd tests, v3.31.7; see
// test/vectors/README.md) must read: every document of a kind Tabby stores parses, with
// no problem reported. Kubernetes objects in them (Services, Endpoints) are not ours.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isKind, parseResource, readManifest } from '../src/resources/index.js';

const DIR = fileURLToPath(new URL('../../test/vectors/calico-confd/', import.meta.url));

function inputs(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) inputs(p, out);
    else if (n === 'input.yaml') out.push(p);
  }
  return out;
}

describe("Calico's confd test manifests", () => {
  const files = inputs(DIR);

  it('there_are_calico_manifests_to_read', () => {
    assert.ok(files.length >= 29, `found ${files.length}`);
  });

  it('every_document_of_our_kinds_parses', () => {
    const problems: string[] = [];
    const counts = new Map<string, number>();
    for (const f of files) {
      readManifest(readFileSync(f, 'utf8')).forEach((d, i) => {
        const js = d.toJS() as { kind?: unknown } | null;
        if (js === null) return;
        if (!isKind(js.kind)) {
          counts.set(`other ${String(js.kind)}`, (counts.get(`other ${String(js.kind)}`) ?? 0) + 1);
          return;
        }
        counts.set(js.kind, (counts.get(js.kind) ?? 0) + 1);
        const r = parseResource(js, `${f.slice(DIR.length)} document ${i + 1}`);
        if (!r.ok)
          for (const p of r.issues)
            problems.push(`${f.slice(DIR.length)}: ${p.resource}: ${p.path}: ${p.reason}`);
      });
    }
    assert.deepEqual(problems, []);
    // The files exercise the kinds that matter for BGP.
    for (const k of ['Node', 'BGPPeer', 'BGPConfiguration', 'IPPool']) assert.ok((counts.get(k) ?? 0) > 0, k);
  });
});

describe('manifests are read as kubectl and calicoctl read them (YAML 1.1)', () => {
  it('unquoted_yes_is_the_label_true_and_base_60_numbers_stay_strings', () => {
    const [doc] = readManifest(
      'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: { name: rr1, labels: { route-reflector: yes, rack: 64512:20 } }\nspec: {}\n',
    );
    const r = parseResource(doc!.toJS());
    assert.ok(r.ok);
    assert.deepEqual(r.resource.metadata.labels, { 'route-reflector': 'true', rack: '64512:20' });
  });

  it('a_name_such_as_e1_stays_a_string_and_exponents_stay_numbers', () => {
    const [doc] = readManifest(
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: e1, labels: {a: E5, b: 1e3, c: .5e1}}\nspec: {cidr: 10.5.0.0/16}\n',
    );
    assert.deepEqual((doc!.toJS() as { metadata: unknown }).metadata, {
      name: 'e1',
      labels: { a: 'E5', b: 1000, c: 5 },
    });
    const r = parseResource(doc!.toJS());
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.resource.metadata.name, 'e1');
  });

  it('a_name_read_as_a_boolean_is_an_error_that_says_to_quote_it', () => {
    const [doc] = readManifest(
      'apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: { name: no }\nspec: {}\n',
    );
    const r = parseResource(doc!.toJS());
    assert.equal(r.ok, false);
    assert.match(JSON.stringify(r), /must be a string, not the boolean false .*quote the name/);
  });
});
