// docs/troubleshooting.md's "BGP not established" causes, provoked for real: a tabby-node
// process and a BIRD 2 "ToR" (or a second tabby-node) in a network namespace of their own
// (tdoc-…), with the page's addresses (ToR 10.0.1.1 AS 65001, node-1 10.0.1.11 AS 64512) on a
// veth pair, one misconfiguration each. For every cause the page quotes log lines and
// `tabby status` output; each quoted log line must appear in what tabby-node wrote (its JSON
// without time, pid and hostname), and the status block must equal `tabby status` (times of
// day aside), so the page cannot drift from what the daemon says.
//
// TABBY_DOCS_PRINT=1 prints what each scenario produced (to write the page), and still asserts.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Datastore, openBackend, parseResource, readManifest } from '@tabby/datastore';
import { kernelUnavailable, setNetnsPrefix, TestNetns } from '@tabby/netlink/testing';
import { fences, readDoc } from './support/docs.js';
import type { Router } from './support/routers.js';
import { birdProtocolState, routerUnavailable, startRouter } from './support/routers.js';
import { until } from './support/until.js';

setNetnsPrefix('tdoc');
const NODE_BIN = fileURLToPath(new URL('../../bin/tabby-node.js', import.meta.url));
const CLI_BIN = fileURLToPath(new URL('../../bin/tabby.js', import.meta.url));
const PAGE = 'troubleshooting.md';
const PRINT = process.env['TABBY_DOCS_PRINT'] === '1';

/** The rack of docs/peering-with-a-tor.md. */
const BASE = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pods }
spec: { cidr: 10.244.0.0/16 }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-1, labels: { rack: rack1 } }
spec: { bgp: { ipv4Address: 10.0.1.11/24 } }
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: node-1-10-244-3-0-26 }
spec: { state: confirmed, node: node-1, cidr: 10.244.3.0/26, deleted: 'false' }
`;

const meshOff = (extra = '') => `
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { asNumber: 64512, nodeToNodeMeshEnabled: false${extra} }
`;

const torPeer = (spec: string) => `
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: rack1-tor }
spec: { nodeSelector: rack == 'rack1', ${spec} }
`;

/**
 * BIRD 2 as the ToR, as on docs/peering-with-a-tor.md, with `extra` in the channel. Passive, as
 * a ToR with a listen range is: a ToR that dials the node would bring some sessions up
 * whatever the node's mistake (a wrong peer port, say) and hide the symptom.
 */
const bird = (opts: { routerId?: string; as?: number; neighbors?: string[]; extra?: string } = {}) => `
log stderr all;
router id ${opts.routerId ?? '10.0.1.1'};
protocol device { }
template bgp tabby_node {
  local 10.0.1.1 as ${opts.as ?? 65001};
  passive on;
  ipv4 { import all; export all; ${opts.extra ?? ''} };
}
${(opts.neighbors ?? ['10.0.1.11']).map((n, i) => `protocol bgp node_${i + 1} from tabby_node { neighbor ${n} as 64512; }`).join('\n')}
`;

interface Scenario {
  /** The page's marker: <!-- troubleshooting: id --> before the log block, then the status block. */
  readonly id: string;
  /** Datastore documents beyond BASE. */
  readonly resources: string;
  readonly bird?: string;
  /** Done once node-1's session is Established (e.g. freeze the ToR). */
  readonly afterEstablished?: (ctx: Rig) => void;
  /** What must have happened before the output is compared (a log message). */
  readonly waitFor: RegExp;
  readonly timeoutMs?: number;
  /** Extra time after waitFor before comparing. */
  readonly settleMs?: number;
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'wrong-peer-as',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.1.1, asNumber: 65002'),
    bird: bird(),
    waitFor: /"notification":"[^"]*\(2\/2\)"/,
  },
  {
    id: 'wrong-port',
    resources: meshOff() + '---' + torPeer("peerIP: '10.0.1.1:1790', asNumber: 65001"),
    bird: bird(),
    waitFor: /ECONNREFUSED|refused/,
  },
  {
    id: 'wrong-address',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.1.2, asNumber: 65001'),
    waitFor: /EHOSTUNREACH/,
    timeoutMs: 40_000,
  },
  {
    id: 'md5-mismatch',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.1.1, asNumber: 65001'),
    bird: bird().replace('passive on;', 'passive on;\n  password "s3cr3t-md5-key";'),
    // The ToR's kernel drops the unsigned SYNs: the connect neither fails nor completes.
    waitFor: /BGP peer added/,
    settleMs: 3000,
  },
  {
    id: 'peer-not-configured',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.1.1, asNumber: 65001'),
    bird: bird({ neighbors: ['10.0.1.12'] }),
    waitFor: /connection closed by peer/,
  },
  {
    id: 'hold-timer-expired',
    resources: meshOff() + '---' + torPeer("peerIP: 10.0.1.1, asNumber: 65001, keepaliveTime: '1s'"),
    bird: bird(),
    afterEstablished: (rig) => {
      // The ToR stops answering (a hung control plane, a saturated link): no more KEEPALIVEs.
      process.kill(-rig.router!.pid, 'SIGSTOP');
    },
    waitFor: /"notification":"[^"]*\(4\/0\)"/,
  },
  {
    id: 'max-prefix',
    resources:
      meshOff() +
      '---' +
      torPeer('peerIP: 10.0.1.1, asNumber: 65001') +
      `---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: node-1-10-244-3-64-26 }
spec: { state: confirmed, node: node-1, cidr: 10.244.3.64/26, deleted: 'false' }
`,
    bird: bird({ extra: 'import limit 1 action disable;' }),
    waitFor: /"notification":"[^"]*\(6\/1\)"/,
  },
  {
    id: 'router-id-collision',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.1.1, asNumber: 64512'),
    bird: bird({ as: 64512, routerId: '10.0.1.11' }),
    waitFor: /"notification":"[^"]*\(2\/3\)"/,
  },
  {
    id: 'no-route',
    resources: meshOff() + '---' + torPeer('peerIP: 10.0.9.1, asNumber: 65001'),
    waitFor: /ENETUNREACH|unreachable/i,
  },
];

interface Rig {
  /** The nodes' namespace, and the ToR's. */
  readonly ns: TestNetns;
  readonly torNs: TestNetns;
  readonly dir: string;
  router?: Router;
  readonly procs: ChildProcess[];
  /** node-1's stdout lines, as JSON objects without time, pid and hostname. */
  readonly lines: Record<string, unknown>[];
}

function docs(yaml: string) {
  return readManifest(yaml).map((d, i) => {
    const r = parseResource(d.toJS(), `document ${i + 1}`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.resource;
  });
}

function startNode(rig: Rig, name: string, ip: string, capture: boolean): void {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      rig.ns.name,
      process.execPath,
      NODE_BIN,
      '--node',
      name,
      '--ip',
      `${ip}/24`,
      '--datastore-dir',
      join(rig.dir, 'datastore'),
      '--socket',
      join(rig.dir, `${name}.sock`),
      '--nodename-file',
      join(rig.dir, `${name}.nodename`),
      '--dataplane',
      'none',
      '--http',
      'none',
      '--log-level',
      'info',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  rig.procs.push(p);
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!capture) continue;
      try {
        const { time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
        rig.lines.push(rest);
      } catch {
        rig.lines.push({ text: line });
      }
    }
  });
  p.stderr.on('data', (d: Buffer) => {
    if (capture) rig.lines.push({ stderr: d.toString() });
  });
}

function tabbyStatus(rig: Rig): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [CLI_BIN, 'status', '--socket', join(rig.dir, 'node-1.sock')],
      { timeout: 10_000 },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(stderr || err.message))),
    ),
  );
}

/** Times of day (the SINCE column) and ephemeral source ports vary from run to run. */
const withoutTimes = (s: string): string =>
  s
    .replace(/\b\d{2}:\d{2}:\d{2}\b/g, 'HH:MM:SS')
    .replace(/Local \(([\d.]+):\d+\)/g, 'Local ($1:PORT)')
    .trimEnd();

/** The page's two blocks after <!-- troubleshooting: id -->: log lines, then `tabby status`. */
function quoted(id: string): { logs: Record<string, unknown>[]; status: string } {
  const all = fences(`docs/${PAGE}`, readDoc(PAGE));
  const at = all.findIndex((f) => f.before === `<!-- troubleshooting: ${id} -->`);
  assert.ok(at >= 0, `docs/${PAGE} has a block marked troubleshooting: ${id}`);
  const logs = all[at]!.body.split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const status = all[at + 1];
  assert.ok(
    status !== undefined && status.before === `<!-- troubleshooting: ${id} status -->`,
    `${id}: status block`,
  );
  // The block shows the command first: `$ tabby status`.
  return { logs, status: status.body.replace(/^\$ .*\n/, '') };
}

const sameLine = (want: Record<string, unknown>, have: Record<string, unknown>): boolean =>
  Object.entries(want).every(
    ([k, v]) => withoutTimes(String(JSON.stringify(have[k]))) === withoutTimes(String(JSON.stringify(v))),
  );

describe(`docs/${PAGE}: BGP not established`, () => {
  const why = kernelUnavailable() ?? routerUnavailable('bird');
  if (why !== undefined) {
    if (process.env['CI'] === 'true')
      throw new Error(`troubleshooting scenarios need root and BIRD under CI: ${why}`);
    console.log(`# skipping docs-troubleshooting: ${why}`);
  }
  const open: Rig[] = [];
  const teardown = async (rig: Rig) => {
    for (const p of rig.procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (rig.router !== undefined) {
      try {
        process.kill(-rig.router.pid, 'SIGCONT');
      } catch {
        // gone
      }
      await rig.router.stop();
    }
    rig.ns.destroy();
    rig.torNs.destroy();
    rmSync(rig.dir, { recursive: true, force: true });
  };
  after(async () => {
    for (const r of open.splice(0)) await teardown(r);
  });

  const only = process.env['TABBY_DOCS_ONLY'];
  for (const sc of SCENARIOS.filter((x) => only === undefined || only.split(',').includes(x.id))) {
    it(
      `the_page_quotes_what_tabby_node_says_for_${sc.id.replaceAll('-', '_')}`,
      { skip: why ?? false },
      async () => {
        // Two namespaces joined by a veth pair: the ToR's and the rack's (nodes), one /24.
        const ns = TestNetns.create(`n${SCENARIOS.indexOf(sc)}`);
        const torNs = TestNetns.create(`t${SCENARIOS.indexOf(sc)}`);
        const dir = mkdtempSync(join(tmpdir(), 'tabby-docs-ts-'));
        const rig: Rig = { ns, torNs, dir, procs: [], lines: [] };
        open.push(rig);
        for (const n of [ns, torNs]) n.ip('link', 'set', 'lo', 'up');
        torNs.ip('link', 'add', 'tor0', 'type', 'veth', 'peer', 'name', 'rack0', 'netns', ns.name);
        torNs.ip('addr', 'add', '10.0.1.1/24', 'dev', 'tor0');
        for (const a of ['10.0.1.11', '10.0.1.12']) ns.ip('addr', 'add', `${a}/24`, 'dev', 'rack0');
        torNs.ip('link', 'set', 'tor0', 'up');
        ns.ip('link', 'set', 'rack0', 'up');
        if (sc.bird !== undefined)
          rig.router = await startRouter('bird', sc.bird, { address: '10.0.1.1', port: 179 }, torNs.name);
        const router = rig.router;
        const backend = await openBackend({ type: 'yaml', dir: join(dir, 'datastore') });
        const ds = new Datastore(backend);
        for (const r of docs(BASE + '---' + sc.resources)) await ds.apply(r);
        await backend.close();
        startNode(rig, 'node-1', '10.0.1.11', true);
        const dump = () =>
          `${rig.lines.map((l) => JSON.stringify(l)).join('\n')}${router === undefined ? '' : `\nBIRD:\n${router.log()}`}`;
        try {
          if (sc.afterEstablished !== undefined) {
            await until(
              async () => (await birdProtocolState(router!, 'node_1'))?.startsWith('Established') === true,
              'node-1 Established with the ToR first',
              20_000,
              100,
            );
            sc.afterEstablished(rig);
          }
          await until(
            () => rig.lines.some((l) => sc.waitFor.test(JSON.stringify(l))),
            `${sc.id}: a line matching ${sc.waitFor}`,
            sc.timeoutMs ?? 20_000,
            100,
          );
          await new Promise((r) => setTimeout(r, sc.settleMs ?? 0));
          if (PRINT) {
            console.log(`=== ${sc.id}\n${rig.lines.map((l) => JSON.stringify(l)).join('\n')}`);
            console.log(await tabbyStatus(rig));
          }
          const want = quoted(sc.id);
          for (const w of want.logs)
            await until(
              () => rig.lines.some((l) => sameLine(w, l)),
              `${sc.id}: tabby-node writes ${JSON.stringify(w)}`,
              sc.timeoutMs ?? 20_000,
              100,
            );
          let last = '';
          await until(
            async () => (last = withoutTimes(await tabbyStatus(rig))) === withoutTimes(want.status),
            `${sc.id}: tabby status prints the page's block`,
            sc.timeoutMs ?? 20_000,
            200,
          ).catch((e: Error) => {
            throw new Error(`${e.message}\nhave:\n${last}\nwant:\n${withoutTimes(want.status)}`, {
              cause: e,
            });
          });
        } catch (e) {
          throw new Error(`${(e as Error).message}\n${dump()}`, { cause: e });
        } finally {
          if (open.includes(rig)) open.splice(open.indexOf(rig), 1);
          await teardown(rig);
        }
      },
    );
  }
});
