// docs/node-daemon.md's Start-up section against the code, both ways: every setting with its
// variable, file field and flag, nothing documented that the code does not read, and the
// default interface exclusions.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_INTERFACES_TO_EXCLUDE, HOSTNAME_ENV, SETTINGS_FIELDS } from '../src/index.js';

const doc = readFileSync(new URL('../../../../docs/node-daemon.md', import.meta.url), 'utf8');
const startup = doc.split(/^## Start-up$/m)[1]?.split(/^## /m)[0] ?? '';

/** The rows of the variables table: first three cells without their backquotes. */
function rows(): string[][] {
  const table = startup.split('### Environment variables')[1]!.split('###')[0]!;
  return table
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .split('|')
        .slice(1, 4)
        .map((c) => c.trim().replace(/`/g, '')),
    )
    .filter((c) => /^[A-Z0-9_]+$/.test(c[0] ?? ''));
}

describe('docs/node-daemon.md: start-up', () => {
  it('lists_every_setting_with_its_file_field_and_flag_and_nothing_else', () => {
    const documented = new Map(rows().map((r) => [r[0]!, r]));
    for (const f of Object.values(SETTINGS_FIELDS)) {
      const row = documented.get(f.env);
      assert.ok(row, `${f.env} is not in the table`);
      assert.deepEqual(row, [f.env, f.file, `--${f.flag}`], f.env);
      documented.delete(f.env);
    }
    assert.ok(documented.has(HOSTNAME_ENV));
    documented.delete(HOSTNAME_ENV);
    assert.deepEqual([...documented.keys()], [], 'documented but not read');
  });

  it('lists_the_default_interface_exclusions_in_calicos_order', () => {
    const para = startup.split("Excluded by default, in Calico's order:")[1]!.split('. Regexes')[0]!;
    const listed = [...para.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    assert.deepEqual(listed, DEFAULT_INTERFACES_TO_EXCLUDE);
  });
});
