// Every fenced ```yaml block in docs/ that holds a Tabby or Calico resource is a valid one:
// parsed as kubectl reads a manifest (YAML 1.1) and checked with parseResource, the boundary
// every manifest goes through. A deliberately invalid example is marked by the line before its
// fence: <!-- invalid: why -->, and must then fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CALICO_API_VERSIONS, API_VERSION, parseResource, readManifest } from '@tabby/datastore';
import { fences, filesUnder, readDoc } from './support/docs.js';

const OURS = new Set([API_VERSION, ...CALICO_API_VERSIONS]);
const INVALID = /^<!--\s*invalid:\s*(.+?)\s*-->$/;

interface Example {
  readonly where: string;
  readonly invalid: string | undefined;
  readonly docs: unknown[];
}

function examples(): { yamlFences: number; resources: Example[] } {
  let yamlFences = 0;
  const resources: Example[] = [];
  for (const file of filesUnder('docs', /\.md$/)) {
    const rel = file.replace(/^docs\//, '');
    for (const f of fences(file, readDoc(rel))) {
      if (f.lang !== 'yaml' && f.lang !== 'yml') continue;
      yamlFences++;
      const where = `${file}:${f.line}`;
      const parsed = readManifest(f.body);
      const errors = parsed.flatMap((d) => d.errors.map((e) => e.message));
      assert.deepEqual(errors, [], `${where}: not valid YAML`);
      const docs = parsed
        .map((d) => d.toJS() as unknown)
        .filter(
          (d) =>
            typeof d === 'object' &&
            d !== null &&
            OURS.has((d as Record<string, unknown>)['apiVersion'] as string),
        );
      if (docs.length > 0) resources.push({ where, invalid: INVALID.exec(f.before)?.[1], docs });
    }
  }
  return { yamlFences, resources };
}

describe('docs/ YAML examples', () => {
  const { yamlFences, resources } = examples();

  it('there_are_resource_examples_to_check', () => {
    // The pages on concepts, peering and troubleshooting carry several: an empty list means the
    // scan broke, not that the docs have none.
    assert.ok(yamlFences >= 12, `only ${yamlFences} yaml blocks found`);
    assert.ok(resources.length >= 7, `only ${resources.length} blocks with resources found`);
  });

  it('the_invalid_marker_is_used_and_honoured', () => {
    // concepts.md shows a pool that is refused: the marked path is exercised, not dead code.
    assert.ok(resources.some((r) => r.invalid !== undefined));
  });

  it('every_resource_example_is_valid_unless_marked_invalid', () => {
    const problems: string[] = [];
    for (const ex of resources) {
      const issues = ex.docs.flatMap((d, i) => {
        const r = parseResource(d, `${ex.where} document ${i + 1}`);
        return r.ok ? [] : r.issues.map((x) => `${x.resource}: ${x.path}: ${x.reason}`);
      });
      if (ex.invalid === undefined && issues.length > 0) problems.push(`${ex.where}: ${issues.join('; ')}`);
      if (ex.invalid !== undefined && issues.length === 0)
        problems.push(`${ex.where}: marked invalid (${ex.invalid}) but parses`);
    }
    assert.deepEqual(problems, []);
  });
});
