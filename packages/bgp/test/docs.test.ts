// docs/errors.md lists every NOTIFICATION code and subcode of the catalogue, and
// nothing else (fastify checks its Errors.md the same way).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NOTIFICATION_CATALOGUE } from '../src/wire/index.js';

// The BGP part only: the CNI codes follow under their own heading (packages/cni checks them).
const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8').split(/^# CNI/m)[0]!;

describe('docs/errors.md', () => {
  const rows = new Map<string, { code: string; sub: string }>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|\s*(\d+)\s*\|([^|]+)\|([^|]+)\|/.exec(line);
    if (m !== null) rows.set(`${m[1]}/${m[2]}`, { code: m[3]!.trim(), sub: m[4]!.trim() });
  }
  it('names every code and subcode of the catalogue as the catalogue does', () => {
    for (const [code, e] of NOTIFICATION_CATALOGUE) {
      for (const [sub, s] of e.subcodes) {
        assert.deepEqual(rows.get(`${code}/${sub}`), { code: e.name, sub: s.name }, `${code}/${sub}`);
      }
    }
  });
  it('lists nothing the catalogue lacks', () => {
    for (const key of rows.keys()) {
      const [code, sub] = key.split('/').map(Number) as [number, number];
      assert.ok(NOTIFICATION_CATALOGUE.get(code)?.subcodes.has(sub), `${key} is not in the catalogue`);
    }
  });
});
