// docs/reference/resources.md is generated from the resource schemas: this fails when it has
// drifted (run `npm run gen:docs`), and when a field has no description (the page and the
// CRDs would show an empty cell).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { KINDS, fieldRows, renderResourcesDoc } from '../src/resources/index.js';

const FILE = fileURLToPath(new URL('../../../../docs/reference/resources.md', import.meta.url));

describe('docs/reference/resources.md', () => {
  it('the_checked_in_page_equals_what_the_schemas_generate', async () => {
    const options = { ...(await prettier.resolveConfig(FILE)), filepath: FILE };
    const want = await prettier.format(renderResourcesDoc(), options);
    assert.equal(
      readFileSync(FILE, 'utf8'),
      want,
      'docs/reference/resources.md has drifted: run npm run gen:docs',
    );
  });

  it('every_field_of_every_kind_has_a_description', () => {
    const missing = KINDS.flatMap((k) =>
      fieldRows(k)
        .filter((r) => r.description === '')
        .map((r) => `${k} ${r.path}`),
    );
    assert.deepEqual(missing, []);
  });

  it('every_kind_and_field_appears_on_the_page', () => {
    const text = readFileSync(FILE, 'utf8');
    for (const k of KINDS) {
      assert.match(text, new RegExp(`^## ${k}$`, 'm'), k);
      for (const r of fieldRows(k)) assert.ok(text.includes(`\`${r.path}\``), `${k} ${r.path}`);
    }
  });
});
