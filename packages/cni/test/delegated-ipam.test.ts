// A delegated IPAM plugin (SPEC.md §4), run for real from CNI_PATH: a shell script standing
// in for host-local that records each call and answers as told. No kernel work: the
// Dataplane is the fake.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertError, attachEnv, conf, World } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-delegate-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = join(dir, 'calls.log');

// Answers ADD with a /24 and a gateway (host-local style), fails ADD when FAIL_ADD is in
// the config, echoes nothing for DEL, GC, CHECK, STATUS.
writeFileSync(
  join(dir, 'fake-local'),
  `#!/bin/sh
in=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $(printf '%s' "$in" | tr -d '\\n' | head -c 60)" >> ${log}
case "$CNI_COMMAND:$in" in
  ADD:*FAIL_ADD*) echo '{"cniVersion":"1.1.0","code":11,"msg":"range busy"}'; exit 1 ;;
  ADD:*) echo '{"cniVersion":"1.1.0","ips":[{"address":"10.1.0.7/24","gateway":"10.1.0.1"}]}' ;;
  STATUS:*) echo '{"cniVersion":"1.1.0","code":50,"msg":"range full"}'; exit 1 ;;
esac
`,
);
chmodSync(join(dir, 'fake-local'), 0o755);
writeFileSync(join(dir, 'crashes'), '#!/bin/sh\necho oops; exit 3\n');
chmodSync(join(dir, 'crashes'), 0o755);

const calls = (): string[] => {
  try {
    return readFileSync(log, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};
const delegated = (type = 'fake-local', extra = {}) => conf({ ipam: { type, ...extra } });

describe('delegated IPAM', () => {
  it('gets_the_address_from_the_plugin_and_gives_the_pod_a_host_prefix', async () => {
    rmSync(log, { force: true });
    const w = new World();
    const out = await w.add(delegated(), { CNI_PATH: `/nonexistent:${dir}` });
    assert.deepEqual(out['ips'], [{ interface: 1, address: '10.1.0.7/32', gateway: '169.254.1.1' }]);
    assert.equal(calls().length, 1);
    assert.match(calls()[0]!, /^ADD c0ffee01 \{"cniVersion":"1\.1\.0","name":"k8s-pod-network"/);
    assert.equal(w.ipam.calls.length, 0, "Tabby's IPAM is not used");
  });

  it('runs_DEL_on_the_plugin_when_its_ADD_fails_and_returns_its_error_code', async () => {
    rmSync(log, { force: true });
    const w = new World();
    const r = await w.invoke(
      attachEnv('ADD', { CNI_PATH: dir }),
      delegated('fake-local', { FAIL_ADD: true }),
    );
    assertError(r, 11, /range busy/);
    assert.deepEqual(
      calls().map((c) => c.split(' ')[0]),
      ['ADD', 'DEL'],
    );
  });

  it('runs_DEL_on_the_plugin_when_a_later_step_fails', async () => {
    rmSync(log, { force: true });
    const w = new World();
    w.dataplane.fail('configurePod');
    assertError(await w.invoke(attachEnv('ADD', { CNI_PATH: dir }), delegated()), 105);
    assert.deepEqual(
      calls().map((c) => c.split(' ')[0]),
      ['ADD', 'DEL'],
    );
  });

  it('forwards_DEL_GC_CHECK_and_STATUS', async () => {
    rmSync(log, { force: true });
    const w = new World();
    const prevResult = await w.add(delegated(), { CNI_PATH: dir });
    assert.equal(
      (await w.invoke(attachEnv('CHECK', { CNI_PATH: dir }), { ...delegated(), prevResult })).code,
      0,
    );
    assert.equal((await w.invoke(attachEnv('DEL', { CNI_PATH: dir }), delegated())).code, 0);
    const gc = { ...delegated(), 'cni.dev/valid-attachments': [] };
    assert.equal((await w.invoke({ CNI_COMMAND: 'GC', CNI_PATH: dir }, gc)).code, 0);
    assertError(await w.invoke({ CNI_COMMAND: 'STATUS', CNI_PATH: dir }, delegated()), 50, /range full/);
    assert.deepEqual(
      calls().map((c) => c.split(' ')[0]),
      ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS'],
    );
  });

  it('fails_with_107_when_the_plugin_is_not_in_CNI_PATH_or_breaks', async () => {
    const w = new World();
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_PATH: dir }), delegated('host-local')),
      107,
      /host-local.*CNI_PATH/,
    );
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_PATH: dir }), delegated('crashes')),
      107,
      /exit 3: oops/,
    );
    assert.equal(w.dataplane.calls.length, 0);
  });

  it('fails_with_4_when_CNI_PATH_is_empty', async () => {
    assertError(await new World().invoke(attachEnv('ADD', { CNI_PATH: '' }), delegated()), 4, /CNI_PATH/);
  });
});
