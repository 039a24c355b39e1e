// `ipam show`, `ipam check`, `ipam release`: calicoctl's commands and output, over any
// Backend. The caller (the `tabby` binary) picks the backend and passes the words after
// `ipam`. Human tables by default, `-o json` for machines.
//
// Exit codes: 0 done (check: no problem found), 1 failed (check: problems found; release:
// the address was not assigned), 2 usage error.
import type { Backend } from '../store/backend.js';
import { formatIp, parseCidr, parseIp } from '../schema/ip.js';
import { Ipam } from './ipam.js';
import type { BlockUsage, CheckReport } from './report.js';
import { checkIpam, loadSnapshot, utilization } from './report.js';

export interface IpamCliIo {
  readonly backend: Backend;
  readonly stdout: NodeJS.WritableStream | { write(s: string): unknown };
  readonly stderr: NodeJS.WritableStream | { write(s: string): unknown };
}

const USAGE = `Usage:
  ipam show [--ip=<IP> | --show-blocks | --show-borrowed | --show-nodes | --show-configuration] [-o json]
  ipam check [--show-problem-ips | --show-all-ips] [-o json]
  ipam release --ip=<IP> [-o json]

Options:
  --ip=<IP>              show: whether this address is in use; release: the address to release.
  --show-blocks          Show every block as well as the pools.
  --show-borrowed        Show addresses taken from blocks affine to another node (or none).
  --show-nodes           Show blocks and addresses per node.
  --show-configuration   Show the IPAM configuration (IPAMConfig "default" with defaults).
  --show-problem-ips     check: list every address and handle behind each problem.
  --show-all-ips         check: as --show-problem-ips, and list the blocks too.
  -o json                Print one JSON document instead of tables.
`;

class UsageError extends Error {}

interface Args {
  readonly cmd: string;
  readonly flags: Set<string>;
  readonly ip: string | undefined;
  readonly json: boolean;
}

const FLAGS: Record<string, readonly string[]> = {
  show: ['--show-blocks', '--show-borrowed', '--show-nodes', '--show-configuration'],
  check: ['--show-problem-ips', '--show-all-ips'],
  release: [],
};

function parseArgs(argv: readonly string[]): Args {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || !Object.hasOwn(FLAGS, cmd))
    throw new UsageError(`unknown ipam command ${JSON.stringify(cmd ?? '')}`);
  const flags = new Set<string>();
  let ip: string | undefined;
  let json = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    const value = (): string => {
      if (eq >= 0) return a.slice(eq + 1);
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (name === '--ip' && cmd !== 'check') ip = value();
    else if (name === '-o' || name === '--output') {
      const v = value();
      if (v !== 'json') throw new UsageError(`unknown output format ${JSON.stringify(v)} (only json)`);
      json = true;
    } else if (FLAGS[cmd]!.includes(a)) flags.add(a);
    else throw new UsageError(`unknown option ${JSON.stringify(a)} for ipam ${cmd}`);
  }
  if (cmd === 'show' && flags.size + (ip === undefined ? 0 : 1) > 1)
    throw new UsageError(
      'ipam show takes at most one of --ip, --show-blocks, --show-borrowed, --show-nodes, --show-configuration',
    );
  if (cmd === 'release' && ip === undefined) throw new UsageError('ipam release needs --ip=<IP>');
  if (ip !== undefined && parseIp(ip) === undefined)
    throw new UsageError(`${JSON.stringify(ip)} is not an IP address`);
  return { cmd, flags, ip: ip === undefined ? undefined : formatIp(parseIp(ip)!), json };
}

/** calicoctl's `%.5g`: 65536, 1.0486e+06, 1.8447e+19. */
function g5(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e5) return String(n);
  let t = n.toPrecision(5);
  let exp = '';
  const e = t.indexOf('e');
  if (e >= 0) {
    const x = Number(t.slice(e + 1));
    exp = `e${x < 0 ? '-' : '+'}${String(Math.abs(x)).padStart(2, '0')}`;
    t = t.slice(0, e);
  }
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  return t + exp;
}

const pct = (part: number, whole: number): string => `${whole === 0 ? 0 : Math.round((100 * part) / whole)}%`;

/** An ASCII table in tablewriter's style: centred headers, numbers right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = '+' + w.map((n) => '-'.repeat(n + 2)).join('+') + '+\n';
  const centre = (s: string, n: number) => {
    const left = Math.floor((n - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(n - s.length - left);
  };
  const cell = (s: string, n: number) => (/^-?[0-9.]+(e[+-][0-9]+)?$/.test(s) ? s.padStart(n) : s.padEnd(n));
  let out = line + '| ' + header.map((h, i) => centre(h, w[i]!)).join(' | ') + ' |\n' + line;
  for (const r of rows) out += '| ' + w.map((n, i) => cell(r[i] ?? '', n)).join(' | ') + ' |\n';
  if (rows.length > 0) out += line;
  return out;
}

export async function runIpamCommand(argv: readonly string[], io: IpamCliIo): Promise<number> {
  const out = (s: string) => void io.stdout.write(s);
  const err = (s: string) => void io.stderr.write(s);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`${e.message}\n\n${USAGE}`);
    return 2;
  }
  const warnings: string[] = [];
  const ipam = new Ipam({
    backend: io.backend,
    log: (level, m) => void (level === 'warn' && warnings.push(m)),
  });
  try {
    const code = await dispatch(args, ipam, io.backend, out, err);
    for (const w of warnings) err(`warning: ${w}\n`);
    return code;
  } catch (e) {
    err(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function dispatch(
  a: Args,
  ipam: Ipam,
  backend: Backend,
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const json = (v: unknown) => out(JSON.stringify(v, null, 2) + '\n');
  if (a.cmd === 'release') {
    const ip = a.ip!;
    const left = await ipam.releaseIps([ip]);
    if (left.length > 0) {
      if (a.json) json({ ip, released: false });
      else err(`IP address ${ip} is not assigned\n`);
      return 1;
    }
    if (a.json) json({ ip, released: true });
    else out(`Successfully released IP address ${ip}\n`);
    return 0;
  }
  if (a.cmd === 'check') return check(a, await loadSnapshot(backend), out);

  // show
  if (a.ip !== undefined) {
    const info = await ipam.addressInfo(a.ip);
    if (a.json) json(info === undefined ? { ip: a.ip, inUse: false } : { ip: a.ip, inUse: true, ...info });
    else if (info === undefined) out(`${a.ip} is not assigned\n`);
    else {
      out(`IP ${a.ip} is in use\n`);
      const keys = Object.keys(info.attrs).sort();
      if (info.handle !== undefined) out(`Handle: ${info.handle}\n`);
      if (keys.length === 0) out('No attributes defined\n');
      else out('Attributes:\n' + keys.map((k) => `  ${k}: ${info.attrs[k]}\n`).join(''));
    }
    return 0;
  }
  if (a.flags.has('--show-configuration')) {
    const c = await ipam.config();
    if (a.json) json(c);
    else
      out(
        renderTable(
          ['PROPERTY', 'VALUE'],
          [
            ['StrictAffinity', String(c.strictAffinity)],
            ['AutoAllocateBlocks', String(c.autoAllocateBlocks)],
            ['MaxBlocksPerHost', String(c.maxBlocksPerHost)],
          ],
        ),
      );
    return 0;
  }
  const snap = await loadSnapshot(backend);
  if (a.flags.has('--show-borrowed')) {
    const rows: {
      ip: string;
      borrowingNode: string;
      block: string;
      blockOwner: string;
      type: string;
      allocatedTo: string;
    }[] = [];
    let unclassified = 0;
    for (const r of allAllocations(snap)) {
      const n = r.attrs['node'];
      if (n === undefined) {
        unclassified++;
        continue;
      }
      const owner = r.blockAffinity?.replace(/^[a-z]+:/, '') ?? '';
      if (owner === n) continue;
      const pod = r.attrs['pod'];
      rows.push({
        ip: r.ip,
        borrowingNode: n,
        block: r.block,
        blockOwner: owner,
        type: pod !== undefined ? 'pod' : (r.attrs['type'] ?? ''),
        allocatedTo: pod !== undefined ? `${r.attrs['namespace'] ?? ''}/${pod}` : '',
      });
    }
    if (a.json) json({ borrowed: rows, unclassified });
    else {
      out(
        renderTable(
          ['IP', 'BORROWING-NODE', 'BLOCK', 'BLOCK OWNER', 'TYPE', 'ALLOCATED-TO'],
          rows.map((r) => [r.ip, r.borrowingNode, r.block, r.blockOwner, r.type, r.allocatedTo]),
        ),
      );
      if (unclassified > 0)
        out(
          `\nNote: found ${unclassified} IP allocations without an explicit node association. Unable to determine if they are borrowed.\n`,
        );
    }
    return 0;
  }
  const u = utilization(snap);
  if (a.json) {
    json(u);
    return 0;
  }
  if (a.flags.has('--show-nodes')) {
    out(
      renderTable(
        ['NODE', 'BLOCKS', 'IPS IN USE', 'BORROWED'],
        u.nodes.map((n) => [n.node, String(n.blocks), String(n.inUse), String(n.borrowed)]),
      ),
    );
    return 0;
  }
  const row = (kind: string, cidr: string, inUse: number, capacity: number): string[] => [
    kind,
    cidr,
    g5(capacity),
    `${g5(inUse)} (${pct(inUse, capacity)})`,
    `${g5(capacity - inUse)} (${pct(capacity - inUse, capacity)})`,
  ];
  const blockRow = (b: BlockUsage) => row('Block', b.cidr, b.inUse, b.capacity);
  const rows: string[][] = [];
  for (const p of u.pools) {
    rows.push(row('IP Pool', p.cidr, p.inUse, p.capacity));
    if (a.flags.has('--show-blocks')) rows.push(...p.blocks.map(blockRow));
  }
  if (a.flags.has('--show-blocks')) rows.push(...u.orphanBlocks.map(blockRow));
  out(renderTable(['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'], rows));
  return 0;
}

function allAllocations(
  snap: Awaited<ReturnType<typeof loadSnapshot>>,
): { ip: string; block: string; blockAffinity: string | undefined; attrs: Record<string, string> }[] {
  const out: {
    ip: string;
    block: string;
    blockAffinity: string | undefined;
    attrs: Record<string, string>;
  }[] = [];
  for (const b of snap.blocks) {
    const c = parseCidr(b.spec.cidr);
    b.spec.allocations.forEach((idx, o) => {
      if (idx === null || c === undefined) return;
      out.push({
        ip: formatIp({ family: c.family, value: c.value + BigInt(o) }),
        block: b.spec.cidr,
        blockAffinity: b.spec.affinity,
        attrs: { ...(b.spec.attributes[idx]?.secondary ?? {}) },
      });
    });
  }
  return out;
}

function check(a: Args, snap: Awaited<ReturnType<typeof loadSnapshot>>, out: (s: string) => void): number {
  const r: CheckReport = checkIpam(snap);
  if (a.json) {
    out(JSON.stringify(r, null, 2) + '\n');
    return r.problems === 0 ? 0 : 1;
  }
  const showAll = a.flags.has('--show-all-ips');
  const show = showAll || a.flags.has('--show-problem-ips');
  const attrText = (x: { handle?: string; attrs: Record<string, string> }) =>
    `handle=${x.handle ?? '<none>'} ` +
    Object.keys(x.attrs)
      .sort()
      .map((k) => `${k}=${x.attrs[k]}`)
      .join(' ');
  out('Checking IPAM for inconsistencies...\n\n');
  out(`Loading all IPAM blocks...\nFound ${r.blocks} IPAM blocks.\n`);
  if (showAll)
    for (const b of snap.blocks) out(` IPAM block ${b.spec.cidr} affinity=${b.spec.affinity ?? '<none>'}:\n`);
  out(`IPAM blocks record ${r.allocations} allocations.\n\n`);
  out('Loading all IPAM pools...\n' + r.activePools.map((p) => `  ${p}\n`).join(''));
  out(`Found ${r.activePools.length} active IP pools.\n\n`);
  out(`Loading all nodes.\nFound ${r.nodeTunnelIps} node tunnel IPs.\n\n`);
  out(`Loading all workload endpoints.\nFound ${r.workloadIps} workload IPs.\n`);
  out(`Workloads and nodes are using ${r.inUseIps} IPs.\n\n`);
  out('Loading all handles\n');
  out('Looking for top (up to 20) nodes by allocations...\n');
  for (const n of r.allocationsByNode.slice(0, 20)) out(`  ${n.node} has ${n.allocations} allocations\n`);
  if (r.allocationsByNode.length > 0)
    out(
      `Node with most allocations has ${r.allocationsByNode[0]!.allocations}; median is ${r.allocationsByNode[Math.floor(r.allocationsByNode.length / 2)]!.allocations}\n`,
    );
  out('\nScanning for IPs that are allocated but not actually in use...\n');
  if (show) for (const x of r.allocatedNotInUse) out(`  ${x.ip} leaked; attrs ${attrText(x)}\n`);
  out(`Found ${r.allocatedNotInUse.length} IPs that are allocated in IPAM but not actually in use.\n`);
  out('Scanning for IPs that are in use by a workload or node but not allocated in IPAM...\n');
  if (show) {
    for (const x of r.multipleOwners) out(`  ${x.ip} has multiple owners.\n`);
    for (const x of r.inUseOutsidePools)
      for (const o of x.owners) out(`  ${x.ip} in use by ${o} is not in any active IP pool.\n`);
    for (const x of r.inUseNotAllocated)
      for (const o of x.owners)
        out(`  ${x.ip} in use by ${o} and in active IPAM pool but has no IPAM allocation.\n`);
  }
  out(`Found ${r.inUseOutsidePools.length} in-use IPs that are not in active IP pools.\n`);
  out(
    `Found ${r.inUseNotAllocated.length} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n`,
  );
  out(`Found ${r.multipleOwners.length} in-use IPs with more than one owner.\n\n`);
  out('Scanning for IPAM handles with no matching IPs...\n');
  if (show) for (const h of r.leakedHandles) out(`  ${h} doesn't have any active IPs.\n`);
  out(
    `Found ${r.leakedHandles.length} handles with no matching IPs (and ${snap.handles.length - r.leakedHandles.length} handles with matches).\n`,
  );
  out('Scanning for IPs with missing handle...\n');
  if (show) {
    for (const h of r.missingHandles)
      out(`  ${h.handle} is in use in a block but doesn't exist (${h.ips.join(', ')}).\n`);
    for (const x of r.allocationsWithoutHandle) out(`  ${x.ip} has no handle; attrs ${attrText(x)}\n`);
  }
  out(`Found ${r.missingHandles.length} handles mentioned in blocks with no matching handle resource.\n`);
  out(`Found ${r.allocationsWithoutHandle.length} allocations with no handle.\n`);
  out('Scanning for handles whose counts disagree with the blocks...\n');
  if (show)
    for (const x of r.handleCountMismatches)
      out(`  ${x.handle} counts ${x.counted} in ${x.block}, which holds ${x.actual} of its addresses.\n`);
  out(`Found ${r.handleCountMismatches.length} handle counts that disagree with the blocks.\n\n`);
  out('Scanning block affinities...\n');
  if (show) {
    for (const x of r.badAffinities)
      out(`  BlockAffinity ${x.name} (${x.state}) for ${x.cidr}: ${x.reason}.\n`);
    for (const x of r.duplicateAffinities) out(`  ${x.cidr} is claimed by nodes ${x.nodes.join(', ')}.\n`);
    for (const x of r.blocksWithoutAffinity)
      out(`  block ${x.cidr} is ${x.affinity} but has no BlockAffinity.\n`);
    for (const x of r.overlappingBlocks) out(`  blocks ${x.a} and ${x.b} overlap.\n`);
  }
  out(`Found ${r.badAffinities.length} affinities that disagree with their blocks.\n`);
  out(`Found ${r.duplicateAffinities.length} blocks claimed by more than one node.\n`);
  out(`Found ${r.blocksWithoutAffinity.length} blocks affine to a node without a BlockAffinity.\n`);
  out(`Found ${r.overlappingBlocks.length} overlapping blocks.\n`);
  out(`Check complete; found ${r.problems} problems.\n`);
  return r.problems === 0 ? 0 : 1;
}
