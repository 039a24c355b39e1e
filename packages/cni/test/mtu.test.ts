// The pod MTU: the config's `mtu`, else the file the node daemon writes (@tabby/ipip's
// DEFAULT_MTU_FILE, injected here as a temporary path), else 1500 with a warning; Calico's
// rules (cni-plugin/pkg/plugin/plugin.go, internal/pkg/utils/utils.go MTUFromFile).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_MTU_FILE } from '@tabby/ipip/mtu-file';
import { tabbyDeps } from '../src/main.js';
import type { JsonObject } from '../src/spec/result.js';
import { assertError, attachEnv, conf, NETNS, World } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-mtu-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A World whose MTU file holds `text` (undefined: no file). */
function world(text?: string): World {
  const file = join(dir, `mtu-${++n}`);
  if (text !== undefined) writeFileSync(file, text);
  return new World({ mtuFile: file });
}

const podMtuOf = (w: World): number | undefined => w.dataplane.podLink(NETNS, 'eth0')?.mtu;
const resultMtu = (out: JsonObject): unknown => (out['interfaces'] as JsonObject[])[1]?.['mtu'];

describe('the pod MTU', () => {
  it('is_the_configs_mtu_when_set_and_the_file_is_not_read', async () => {
    // A garbled file would fail the ADD if it were read.
    const w = world('garbage');
    const out = await w.add(conf({ mtu: 1400 }));
    assert.equal(podMtuOf(w), 1400);
    assert.equal(resultMtu(out), 1400);
  });

  it('comes_from_the_mtu_file_when_the_config_has_none', async () => {
    const w = world('1440\n');
    const out = await w.add();
    assert.equal(podMtuOf(w), 1440);
    assert.equal(resultMtu(out), 1440);
  });

  it('comes_from_the_mtu_file_when_the_config_says_0_as_calico_reads_it', async () => {
    const w = world(' 8980 ');
    await w.add(conf({ mtu: 0 }));
    assert.equal(podMtuOf(w), 8980);
  });

  it('is_1500_with_a_warning_when_neither_exists', async () => {
    const w = world();
    const r = await w.invoke(attachEnv('ADD'), conf());
    assert.equal(r.code, 0, r.stdout);
    assert.equal(podMtuOf(w), 1500);
    assert.match(r.stderr, /warn: no mtu in the config and no MTU file .*mtu-\d+: pods get MTU 1500/);
  });

  it('fails_with_7_naming_the_file_when_it_holds_no_mtu_before_anything_is_done', async () => {
    for (const bad of ['abc', '0', '65536', '1440 1480', '']) {
      const w = world(bad);
      assertError(await w.invoke(attachEnv('ADD'), conf()), 7, /invalid MTU file .*mtu-\d+: .*is not an MTU/);
      assert.deepEqual(w.ipam.calls, [], bad);
      assert.deepEqual(w.dataplane.calls, [], bad);
    }
  });

  it('fails_with_5_when_the_file_cannot_be_read', async () => {
    const file = join(dir, 'a-directory');
    mkdirSync(file);
    const w = new World({ mtuFile: file });
    assertError(await w.invoke(attachEnv('ADD'), conf()), 5, /cannot read the MTU file .*a-directory/);
    assert.deepEqual(w.ipam.calls, []);
  });

  it('with_require_mtu_file_fails_with_11_until_the_file_exists', async () => {
    const w = world();
    const c = conf({ require_mtu_file: true });
    assertError(await w.invoke(attachEnv('ADD'), c), 11, /MTU file .* does not exist: require_mtu_file/);
    assert.deepEqual(w.ipam.calls, []);
    const w2 = world('1450');
    await w2.add(c);
    assert.equal(podMtuOf(w2), 1450);
    // An mtu in the config needs no file.
    const w3 = world();
    await w3.add(conf({ require_mtu_file: true, mtu: 1300 }));
    assert.equal(podMtuOf(w3), 1300);
  });

  it('is_checked_by_CHECK_as_ADD_recorded_it_even_after_the_file_changes', async () => {
    const file = join(dir, 'changing');
    writeFileSync(file, '1440');
    const w = new World({ mtuFile: file });
    const c = conf({ prevResult: await w.add() });
    writeFileSync(file, '1400');
    assert.equal((await w.invoke(attachEnv('CHECK'), c)).code, 0);
    w.dataplane.podLink(NETNS, 'eth0')!.mtu = 1400;
    assertError(await w.invoke(attachEnv('CHECK'), c), 106, /eth0 has MTU 1400, not 1440/);
  });

  it('is_read_from_the_daemons_file_unless_TABBY_MTU_FILE_says_otherwise', () => {
    assert.equal(DEFAULT_MTU_FILE, '/var/lib/tabby/mtu');
    assert.equal(tabbyDeps({}).mtuFile, undefined, 'run() then uses DEFAULT_MTU_FILE');
    assert.equal(tabbyDeps({ TABBY_MTU_FILE: '/run/x/mtu' }).mtuFile, '/run/x/mtu');
  });
});

describe('MTU settings in the config', () => {
  it('refuses_a_require_mtu_file_that_is_not_a_boolean_and_an_mtu_out_of_range', async () => {
    const w = world();
    assertError(await w.invoke(attachEnv('ADD'), conf({ require_mtu_file: 'yes' })), 7, /require_mtu_file/);
    assertError(await w.invoke(attachEnv('ADD'), conf({ mtu: 67 })), 7, /mtu: must be 68 to 65535/);
  });
});
