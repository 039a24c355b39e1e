// Inputs that once made a decoder throw something other than BgpNotification
// (saved by the fuzz run) must now decode or raise a BgpNotification.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BgpNotification, decodeFrame } from '../src/wire/index.js';
import { contextFor, hex, loadJsonDir } from './helpers.js';

describe('saved fuzz crashers', () => {
  const files = loadJsonDir<{
    hex: string;
    context: { as4?: boolean; addPath?: string[]; extendedMessage?: boolean };
  }>('crashers');
  it('are replayed (none saved is fine)', () => assert.ok(Array.isArray(files)));
  for (const { file, data } of files) {
    it(file, () => {
      try {
        decodeFrame(hex(data.hex), contextFor(data.context));
      } catch (e) {
        assert.ok(e instanceof BgpNotification, String(e));
      }
    });
  }
});
