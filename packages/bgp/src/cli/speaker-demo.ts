// `bgp-ts demo`: three real speakers on loopback, started from YAML exactly as `bgp-ts run`
// starts them, in the shape of a small Tabby cluster: two nodes that are clients of a
// route reflector, each announcing its pod blocks. The demo prints what an operator would
// look at (`bgp-ts status`, `bgp-ts rib PREFIX`), then drains one node and shows the
// withdrawal and the Cease it sent. `bgp-ts demo --codec` shows the wire codec instead.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningDaemon } from '../daemon/index.js';
import { ask, startDaemon } from '../daemon/index.js';

interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** The control-socket commands, run through the CLI as an operator types them. */
export type Command = (argv: readonly string[]) => Promise<number>;

interface Node {
  readonly name: string;
  readonly address: string;
  readonly blocks: readonly string[];
}

const AS = 64512;
const RR = { name: 'rr', address: '127.0.0.41' };
const NODES: readonly Node[] = [
  { name: 'node-a', address: '127.0.0.42', blocks: ['10.65.1.0/26', '10.65.1.64/26', 'fd00:10:65:1::/122'] },
  { name: 'node-b', address: '127.0.0.43', blocks: ['10.65.2.0/26', 'fd00:10:65:2::/122'] },
];

export async function speakerDemo(io: Io, command: Command, timeoutMs = 20_000): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bgp-ts-demo-'));
  const running = new Map<string, RunningDaemon>();
  const sock = (name: string) => join(dir, `${name}.sock`);
  // Each speaker's pino lines, kept in memory so the demo can quote them.
  const logs = new Map<string, string[]>();
  const start = async (name: string, yaml: string) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, yaml);
    const lines: string[] = [];
    logs.set(name, lines);
    const sink = {
      write: (chunk: string) => {
        lines.push(chunk);
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    const d = await startDaemon(file, { logDestination: sink });
    running.set(name, d);
    return d;
  };
  const stopAll = async () => {
    for (const d of running.values()) await d.stop('demo finished');
    running.clear();
  };
  const wait = async (what: string, f: () => boolean) => {
    const t0 = Date.now();
    while (!f()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  try {
    io.stdout(
      `bgp-ts demo: a route reflector and two nodes in AS ${AS}, three speakers on loopback\n` +
        `started from YAML as \`bgp-ts run --config FILE\` starts them (the files are in ${dir} until the end)\n\n`,
    );
    // The reflector listens on a port the kernel picks; the nodes dial it (like calico/node
    // peering with a reflector). IPv6 routes ride the IPv4 sessions (MP-BGP, RFC 4760).
    const rr = await start(
      RR.name,
      `routerId: 10.0.0.41
asn: ${AS}
clusterId: 10.0.0.41
listen: { address: ${RR.address}, port: 0 }
controlSocket: ${sock(RR.name)}
logLevel: info
peers:
${NODES.map(
  (n) =>
    `  - { name: ${n.name}, address: ${n.address}, asn: ${AS}, passive: true, holdTime: 9, routeReflectorClient: true, families: [ipv4-unicast, ipv6-unicast] }`,
).join('\n')}
`,
    );
    for (const [i, n] of NODES.entries()) {
      await start(
        n.name,
        `routerId: ${n.address.replace('127.0.0', '10.0.0')}
asn: ${AS}
listen: false
controlSocket: ${sock(n.name)}
logLevel: info
peers:
  - { name: rr, address: ${RR.address}, port: ${rr.speaker.port}, localAddress: ${n.address}, asn: ${AS}, holdTime: 9, connectRetryTime: 1, nextHopIpv6: "fd00::${i + 42}", families: [ipv4-unicast, ipv6-unicast] }
originate:
${n.blocks.map((b) => `  - { prefix: ${b}, communities: ["${AS}:${100 + i}"] }`).join('\n')}
`,
      );
    }
    const total = NODES.reduce((s, n) => s + n.blocks.length, 0);
    const size = (name: string) => {
      const d = running.get(name)!;
      return d.speaker.ribs[1].size + d.speaker.ribs[2].size;
    };
    const t0 = performance.now();
    await wait('every speaker to hold every pod block', () =>
      [RR.name, ...NODES.map((n) => n.name)].every((n) => size(n) === total),
    );
    io.stdout(
      `All three hold all ${total} pod blocks (IPv4 and IPv6) ${Math.round(performance.now() - t0)} ms after start.\n\n`,
    );

    io.stdout(`$ bgp-ts status --socket ${sock(RR.name)}\n`);
    await command(['status', '--socket', sock(RR.name)]);
    const [a, b] = NODES as [Node, Node];
    io.stdout(
      `\n$ bgp-ts rib ${b.blocks[0]!} --socket ${sock(a.name)}   # node-b's block, as node-a learned it\n`,
    );
    await command(['rib', b.blocks[0]!, '--socket', sock(a.name)]);

    io.stdout(
      `\nDraining ${b.name}: it stops with Cease / Administrative Shutdown and a message (RFC 9003).\n`,
    );
    await running.get(b.name)!.stop(`${b.name} drained for maintenance`);
    running.delete(b.name);
    await wait(`${a.name} to withdraw ${b.name}'s blocks`, () => size(a.name) === a.blocks.length);
    io.stdout(`${a.name} now holds only its own ${a.blocks.length} blocks.\n\n`);
    io.stdout(`$ bgp-ts status --socket ${sock(RR.name)}\n`);
    await command(['status', '--socket', sock(RR.name)]);
    const status = (await ask(sock(RR.name), { command: 'status' })) as {
      peers: { name: string; lastError?: string }[];
    };
    const seen = status.peers.find((p) => p.name === b.name)?.lastError ?? '';
    io.stdout(`\nThe reflector's log line for it (pino, one line per session event):\n`);
    const line = (logs.get(RR.name) ?? [])
      .map((l) => l.trimEnd())
      .find((l) => l.includes(`"peer":"${b.name}"`) && l.includes('"from":"established"'));
    io.stdout(`${line ?? '(not found)'}\n`);
    await stopAll();
    if (!seen.includes(`Administrative Shutdown (6/2): "${b.name} drained for maintenance"`)) {
      io.stderr(
        `bgp-ts demo: the reflector did not record the Cease (last error: ${JSON.stringify(seen)})\n`,
      );
      return 1;
    }
    io.stdout(
      '\nAll speakers stopped. Run one yourself: bgp-ts run --config FILE (see docs/bgp-speaker.md).\n',
    );
    return 0;
  } catch (e) {
    io.stderr(`bgp-ts demo: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await stopAll().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
