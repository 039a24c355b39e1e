// `tabby render --node NAME`: the node's effective BGP configuration, computed from the
// datastore without opening any session. -o table (default), json (the BgpConfig object,
// stable), bird (the six BIRD files Calico's confd would write; --out-dir writes them).
import type { CliCommand } from '@tabby/datastore/cli';
import { UsageError } from '@tabby/datastore/cli';
import { readManifest } from '@tabby/datastore';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeBgpConfig } from '../bgpconfig/compute.js';
import type { BgpEnvironment } from '../bgpconfig/inputs.js';
import { EMPTY_KUBERNETES } from '../bgpconfig/inputs.js';
import { KubernetesObjectError, kubernetesObjectsFrom } from '../bgpconfig/kubernetes.js';
import type { BgpConfig, FamilyConfig } from '../bgpconfig/model.js';
import { renderBird } from '../bgpconfig/render/bird.js';
import { renderTable } from '../bgpconfig/render/table.js';
import { loadSnapshot } from '../bgpconfig/snapshot.js';

export const REDACTED = '<redacted>';

/** The config with every password replaced by REDACTED. */
export function redact(cfg: BgpConfig): BgpConfig {
  const fam = (f: FamilyConfig): FamilyConfig => ({
    ...f,
    peers: f.peers.map((p) => (p.password === undefined ? p : { ...p, password: REDACTED })),
  });
  return { ...cfg, ipv4: fam(cfg.ipv4), ipv6: fam(cfg.ipv6) };
}

export function bgpEnvironment(env: Readonly<Record<string, string | undefined>>): BgpEnvironment {
  const out: { -readonly [K in keyof BgpEnvironment]: BgpEnvironment[K] } = {};
  if (env['CALICO_ROUTER_ID'] !== undefined && env['CALICO_ROUTER_ID'] !== '')
    out.CALICO_ROUTER_ID = env['CALICO_ROUTER_ID'];
  if (env['CALICO_ADVERTISE_CLUSTER_IPS'] !== undefined && env['CALICO_ADVERTISE_CLUSTER_IPS'] !== '')
    out.CALICO_ADVERTISE_CLUSTER_IPS = env['CALICO_ADVERTISE_CLUSTER_IPS'];
  return out;
}

const USAGE = `  render --node NAME   this node's BGP configuration, computed without opening sessions
                       (-o table|json|bird, --out-dir DIR with -o bird, --show-secrets,
                       --kubernetes-objects FILE: Secrets, Services, EndpointSlices, Nodes;
                       NODENAME, CALICO_ROUTER_ID, CALICO_ADVERTISE_CLUSTER_IPS as Calico)
`;

export const renderCommand: CliCommand = {
  usage: USAGE,
  async run(argv, ctx) {
    const flags = new Map<string, string>();
    for (let i = 0; i < argv.length; i++) {
      const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
      if (m === null) throw new UsageError(`render: unexpected argument ${JSON.stringify(argv[i])}`);
      const name = m[1]!;
      if (name === 'show-secrets') flags.set(name, 'true');
      else if (['node', 'o', 'output', 'out-dir', 'kubernetes-objects'].includes(name)) {
        const v = m[2] ?? argv[++i];
        if (v === undefined) throw new UsageError(`render: --${name} needs a value`);
        flags.set(name, v);
      } else throw new UsageError(`render: unknown flag --${name}`);
    }
    const node = flags.get('node') ?? ctx.env['NODENAME'];
    if (node === undefined || node === '') throw new UsageError('render needs --node NAME (or NODENAME)');
    const output = flags.get('o') ?? flags.get('output') ?? 'table';
    if (!['table', 'json', 'bird'].includes(output))
      throw new UsageError(`render: -o must be table, json or bird, not ${JSON.stringify(output)}`);
    const showSecrets = flags.get('show-secrets') === 'true';

    let kubernetes = EMPTY_KUBERNETES;
    const kubeFile = flags.get('kubernetes-objects');
    if (kubeFile !== undefined) {
      const docs = readManifest(await ctx.readFile(kubeFile));
      const bad = docs.find((d) => d.errors.length > 0);
      if (bad !== undefined) {
        ctx.stderr(`tabby: ${kubeFile}: is not valid YAML: ${bad.errors[0]!.message}\n`);
        return 1;
      }
      try {
        kubernetes = kubernetesObjectsFrom(docs.map((d) => d.toJS() as unknown));
      } catch (e) {
        if (!(e instanceof KubernetesObjectError)) throw e;
        ctx.stderr(`tabby: ${kubeFile}: ${e.message}\n`);
        return 1;
      }
    }

    const snap = await loadSnapshot(await ctx.open(), kubernetes);
    const cfg = computeBgpConfig(snap, node, bgpEnvironment(ctx.env));
    const shown = showSecrets ? cfg : redact(cfg);
    if (output === 'json') ctx.stdout(`${JSON.stringify(shown, null, 2)}\n`);
    else if (output === 'table') ctx.stdout(renderTable(shown));
    else {
      const files = renderBird(cfg, { showSecrets });
      const dir = flags.get('out-dir');
      if (dir !== undefined) {
        await mkdir(dir, { recursive: true });
        for (const [name, text] of Object.entries(files) as [string, string][])
          await writeFile(join(dir, name), text);
        ctx.stdout(`wrote ${Object.keys(files).join(', ')} to ${dir}\n`);
      } else
        for (const [name, text] of Object.entries(files) as [string, string][])
          ctx.stdout(`# ==> ${name} <==\n${text}\n`);
      for (const w of cfg.warnings) ctx.stderr(`warning: ${w}\n`);
    }
    return 0;
  },
};
