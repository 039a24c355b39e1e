// docs/reference/environment.md against the sources, both ways: every environment variable a
// source under packages/*/src or packages/*/bin reads is in the page's tables, and every
// variable in them is read somewhere.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HOSTNAME_ENV, SETTINGS_FIELDS } from '../src/index.js';
import { REPO, filesUnder, firstColumnNames, readDoc } from './support/docs.js';

/** How our sources read the environment; each pattern's first non-empty group is the name. */
const READS: readonly RegExp[] = [
  /\benv(?:\[['"]([A-Z][A-Z0-9_]+)['"]\]|\.([A-Z][A-Z0-9_]+))/g, // process.env / io.env / this.env
  /\benv:\s*'([A-Z][A-Z0-9_]+)'/g, // the start-up settings table
  /_ENV\s*=\s*'([A-Z][A-Z0-9_]+)'/g, // HOSTNAME_ENV
  /'(CNI_[A-Z]+)'/g, // the CNI spec's variables (REQUIRED table, parseEnv)
];
/** `pick('flag', 'VAR', ...)`: the datastore's and tabby-node's flag-or-environment lookups. */
const PICK = /pick\(\s*'[a-z0-9-]+'((?:\s*,\s*'[A-Z][A-Z0-9_]+')+)\s*\)/g;

function variablesRead(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (name: string, file: string): void => {
    const files = found.get(name) ?? [];
    if (!files.includes(file)) files.push(file);
    found.set(name, files);
  };
  const files = [
    ...filesUnder('packages', /\.(ts|js|mjs)$/).filter(
      (f) => /^packages\/[^/]+\/(src|bin)\//.test(f) && !f.endsWith('.d.ts'),
    ),
  ];
  assert.ok(files.length > 50, `found only ${files.length} source files under ${REPO}`);
  for (const f of files) {
    const text = readFileSync(join(REPO, f), 'utf8');
    for (const re of READS)
      for (const m of text.matchAll(re)) {
        const name = m[1] ?? m[2];
        if (name !== undefined) add(name, f);
      }
    for (const m of text.matchAll(PICK))
      for (const v of m[1]!.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) add(v[1]!, f);
  }
  return found;
}

const documented = new Set(firstColumnNames(readDoc('reference/environment.md')));

describe('docs/reference/environment.md', () => {
  it('documents_every_variable_the_sources_read', () => {
    const missing = [...variablesRead()]
      .filter(([name]) => !documented.has(name))
      .map(([name, files]) => `${name} (${files.join(', ')})`);
    assert.deepEqual(missing, [], 'read by the code but not on the page');
  });

  it('documents_no_variable_that_no_source_reads', () => {
    const read = variablesRead();
    assert.deepEqual(
      [...documented].filter((n) => !read.has(n)),
      [],
    );
  });

  it('the_scan_finds_every_start_up_setting', () => {
    // Guards the patterns above: the settings table is the largest source of variables.
    const read = variablesRead();
    for (const f of Object.values(SETTINGS_FIELDS)) assert.ok(read.has(f.env), f.env);
    assert.ok(read.has(HOSTNAME_ENV));
  });
});
