// Calico's own confd scenarios (v3.31.7; vectors/calico-confd/README.md): for each, the
// scenario's resources, Kubernetes objects and environment go through computeBgpConfig and
// the BIRD writer, and the result must mean the same as Calico's expected BIRD files. Both
// sides are parsed and normalized (support/bird); text is not compared. Scenarios where
// Tabby differs on purpose are listed in DELIBERATE with the reason, which
// docs/migrating-from-calico.md repeats; they must still differ only in the stated way.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AnyKindResource } from '@tabby/datastore';
import { isKind, parseResource, readManifest } from '@tabby/datastore';
import { computeBgpConfig } from '../src/index.js';
import { kubernetesObjectsFrom } from '../src/bgpconfig/kubernetes.js';
import { renderBird } from '../src/bgpconfig/render/bird.js';
import { snapshotOf } from '../src/bgpconfig/snapshot.js';
import { bgpEnvironment } from '../src/cli/render.js';
import { diffBird, normalizeBird, parseBirdFiles } from './support/bird/index.js';

const VEC = fileURLToPath(new URL('../../test/vectors/calico-confd/', import.meta.url));
const index = JSON.parse(readFileSync(join(VEC, 'index.json'), 'utf8')) as { scenario: string }[];

export interface ScenarioResult {
  readonly scenario: string;
  readonly differences: readonly string[];
}

/** Renders one scenario and compares it with Calico's expected files; the differences, located. */
export function runScenario(scenario: string): ScenarioResult {
  const dir = join(VEC, scenario);
  const env = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf8')) as Record<string, string>;
  const resources: AnyKindResource[] = [];
  const problems: string[] = [];
  readManifest(readFileSync(join(dir, 'resources.yaml'), 'utf8')).forEach((d, i) => {
    const js = d.toJS() as { kind?: unknown } | null;
    if (js === null || typeof js.kind !== 'string' || !isKind(js.kind)) return;
    const r = parseResource(js, `resources.yaml document ${i + 1}`);
    if (r.ok) resources.push(r.resource);
    else problems.push(...r.issues.map((x) => `${x.resource}: ${x.path}: ${x.reason}`));
  });
  const kubeFile = join(dir, 'kubernetes.yaml');
  const kube = kubernetesObjectsFrom(
    existsSync(kubeFile) ? readManifest(readFileSync(kubeFile, 'utf8')).map((d) => d.toJS() as unknown) : [],
  );
  const snap = snapshotOf(resources, kube);
  // Calico's Felix tells confd which workloads peer, in endpoint status files; one scenario has them.
  const statusDir = join(dir, 'endpoint-status');
  const withStatus = existsSync(statusDir)
    ? {
        ...snap,
        localBgpPeerEndpoints: readdirSync(statusDir)
          .sort()
          .map((f) => {
            const st = JSON.parse(readFileSync(join(statusDir, f), 'utf8')) as {
              ipv4Nets?: string[];
              ipv6Nets?: string[];
              bgpPeerName: string;
            };
            const ip = (nets: string[] | undefined) => nets?.[0]?.split('/')[0];
            const ipv4 = ip(st.ipv4Nets);
            const ipv6 = ip(st.ipv6Nets);
            return {
              name: f,
              bgpPeerName: st.bgpPeerName,
              ...(ipv4 ? { ipv4 } : {}),
              ...(ipv6 ? { ipv6 } : {}),
            };
          }),
      }
    : snap;
  const cfg = computeBgpConfig(withStatus, env['NODENAME']!, bgpEnvironment(env));
  const ours = new Map(Object.entries(renderBird(cfg, { showSecrets: true })) as [string, string][]);
  const expected = new Map<string, string>();
  for (const f of readdirSync(join(dir, 'expected')))
    expected.set(f, readFileSync(join(dir, 'expected', f), 'utf8'));
  const differences = [...problems];
  for (const entry of ['bird.cfg', 'bird6.cfg'])
    differences.push(
      ...diffBird(
        normalizeBird(parseBirdFiles(expected, entry)),
        normalizeBird(parseBirdFiles(ours, entry)),
      ).map((d) => `${entry}: ${d}`),
    );
  return { scenario, differences };
}

describe("Calico's confd scenarios", () => {
  for (const { scenario } of index)
    it(scenario, () => {
      const r = runScenario(scenario);
      assert.deepEqual(r.differences, []);
    });
});
