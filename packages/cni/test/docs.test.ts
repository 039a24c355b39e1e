// docs/errors.md's CNI section lists every code of CNI_ERROR_CODES under the same name, and
// nothing else (the BGP NOTIFICATION table above it is checked the same way in packages/bgp).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CNI_ERROR_CODES, ErrorCode } from '../src/spec/errors.js';

const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
const section = doc.split(/^# CNI error codes$/m)[1] ?? '';

describe('docs/errors.md CNI section', () => {
  const rows = new Map<number, string>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|([^|]+)\|([^|]+)\|/.exec(line);
    if (m !== null) {
      assert.ok(!rows.has(Number(m[1])), `code ${m[1]} listed twice`);
      assert.notEqual(m[3]!.trim(), '', `code ${m[1]} says when it is returned`);
      rows.set(Number(m[1]), m[2]!.trim());
    }
  }
  it('exists', () => assert.ok(rows.size > 0, 'no "# CNI error codes" table in docs/errors.md'));
  it('names_every_code_of_the_catalogue_as_the_catalogue_does', () => {
    for (const [code, name] of CNI_ERROR_CODES) assert.equal(rows.get(code), name, `code ${code}`);
  });
  it('lists_nothing_the_catalogue_lacks', () => {
    for (const code of rows.keys()) assert.ok(CNI_ERROR_CODES.has(code), `${code} is not in CNI_ERROR_CODES`);
  });
  it('has_a_catalogue_entry_for_every_ErrorCode_constant', () => {
    for (const [k, v] of Object.entries(ErrorCode)) assert.ok(CNI_ERROR_CODES.has(v), `${k} (${v})`);
    assert.equal(new Set(Object.values(ErrorCode)).size, CNI_ERROR_CODES.size);
  });
});
