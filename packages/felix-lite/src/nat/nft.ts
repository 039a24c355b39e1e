// The nft seam: `nft -f -` for a transaction and `nft -j list table` to read one of our tables
// back (ExecNft runs the binary; tests of the loop use their own Nft), and the comparison of
// what was read with the plan (natTableDiff), which is how drift is found.
//
// The comparison is semantic, not textual: nft's JSON differs between versions in details
// (a /32 printed bare, masquerade flags as a string or a list), so sets are compared as
// canonical CIDRs, the chain by its hook, type, priority and policy, and the rule by the
// expressions it must hold and nothing else. Handles and counter values are ignored.
import { spawn } from 'node:child_process';
import { cidrText, parseCidr } from '../routes/ip.js';
import type { NatPlan, NatTablePlan, NftFamily } from './render.js';
import { NAT_ALL_POOLS_SET, NAT_CHAIN, NAT_POOLS_SET, NAT_RULE_COMMENT } from './render.js';

/** One object of `nft -j` output (`{"table": {...}}`, `{"set": {...}}`, ...), not interpreted. */
export type NftObject = Readonly<Record<string, unknown>>;

export interface Nft {
  /** Runs one `nft -f -` transaction: all of it is applied or none (then it rejects). */
  apply(script: string): Promise<void>;
  /** The objects of `nft -j list table <family> <table>`, or undefined when there is no such table. */
  listTable(family: NftFamily, table: string): Promise<readonly NftObject[] | undefined>;
}

/** nft is not installed (or not on PATH). */
export class NftMissingError extends Error {
  override readonly name = 'NftMissingError';
}

/** nft ran and failed: the transaction was refused as a whole, or its output made no sense. */
export class NftError extends Error {
  override readonly name = 'NftError';
  constructor(
    message: string,
    readonly stderr = '',
    readonly exitCode: number | null = null,
  ) {
    super(message);
  }
}

export interface ExecNftOptions {
  /** The nft binary (default "nft", looked up on PATH). */
  readonly command?: string;
  /** Run it inside this named network namespace (`ip netns exec`), for tests and labs. */
  readonly netns?: string;
  /** Kill nft after this long (default 10 s). */
  readonly timeoutMs?: number;
}

const MISSING = (detail: string): NftMissingError =>
  new NftMissingError(
    `nft not found: NAT-outgoing needs nftables (install the "nftables" package); ${detail}`,
  );

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** nft run as a child process. */
export class ExecNft implements Nft {
  private readonly command: string;
  private readonly netns: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: ExecNftOptions = {}) {
    this.command = opts.command ?? 'nft';
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async apply(script: string): Promise<void> {
    const r = await this.run(['-f', '-'], script);
    if (r.code !== 0)
      throw new NftError(`nft -f refused the NAT transaction: ${firstLines(r.stderr)}`, r.stderr, r.code);
  }

  async listTable(family: NftFamily, table: string): Promise<readonly NftObject[] | undefined> {
    const r = await this.run(['-j', 'list', 'table', family, table]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw new NftError(
        `nft list table ${family} ${table} failed: ${firstLines(r.stderr)}`,
        r.stderr,
        r.code,
      );
    }
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch (e) {
      throw new NftError(`nft -j list table ${family} ${table} printed no JSON: ${(e as Error).message}`);
    }
    const list = isRecord(doc) ? doc['nftables'] : undefined;
    if (!Array.isArray(list)) throw new NftError(`nft -j list table ${family} ${table}: no "nftables" array`);
    return list.filter(isRecord);
  }

  private run(args: readonly string[], stdin?: string): Promise<Ran> {
    const [cmd, argv] =
      this.netns === undefined
        ? [this.command, [...args]]
        : ['ip', ['netns', 'exec', this.netns, this.command, ...args]];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
      // our own timer: spawn's `timeout` option keeps its timer armed when the binary is missing
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.timeoutMs);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => undefined /* EPIPE when nft exits early: its exit status tells */);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(e.code === 'ENOENT' ? MISSING(`${cmd}: ${e.message}`) : new NftError(`${cmd}: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8');
        // `ip netns exec` reports a binary it cannot exec on stderr rather than by errno
        if (this.netns !== undefined && /exec of "[^"]*" failed: No such file or directory/.test(stderr)) {
          reject(MISSING(firstLines(stderr)));
          return;
        }
        if (signal !== null) {
          reject(
            new NftError(
              timedOut
                ? `${this.command} ${args.join(' ')} did not finish within ${this.timeoutMs} ms`
                : `${this.command} ${args.join(' ')} killed by ${signal}`,
            ),
          );
          return;
        }
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr });
      });
      child.stdin.end(stdin ?? '');
    });
  }
}

function firstLines(text: string, n = 6): string {
  return text.trim().split('\n').slice(0, n).join(' | ');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// --- reading a table back

interface SetState {
  readonly type: unknown;
  readonly flags: readonly string[];
  /** Canonical CIDRs, sorted; anything not a prefix or address kept as JSON (never equal to ours). */
  readonly elements: readonly string[];
}

interface ChainState {
  readonly type: unknown;
  readonly hook: unknown;
  readonly prio: unknown;
  readonly policy: unknown;
}

interface RuleState {
  readonly chain: unknown;
  readonly comment: unknown;
  readonly expr: readonly unknown[];
}

function elementText(e: unknown): string {
  if (isRecord(e) && isRecord(e['elem'])) return elementText(e['elem']['val']);
  try {
    if (typeof e === 'string') return cidrText(parseCidr(e));
    if (isRecord(e) && isRecord(e['prefix'])) {
      const p = e['prefix'];
      if (typeof p['addr'] === 'string' && typeof p['len'] === 'number')
        return cidrText(parseCidr(`${p['addr']}/${p['len']}`));
    }
  } catch {
    // not an address: kept as JSON below, so it shows as a difference
  }
  return JSON.stringify(e);
}

const strings = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

function matchOf(e: unknown): { op: unknown; field: unknown; protocol: unknown; right: unknown } | undefined {
  if (!isRecord(e) || !isRecord(e['match'])) return undefined;
  const m = e['match'];
  const left = isRecord(m['left']) && isRecord(m['left']['payload']) ? m['left']['payload'] : {};
  return { op: m['op'], field: left['field'], protocol: left['protocol'], right: m['right'] };
}

/** Why our rule is not what the plan wants, or undefined when it is. */
function ruleDiff(rule: RuleState, family: NftFamily, fullyRandom: boolean): string | undefined {
  if (rule.comment !== NAT_RULE_COMMENT) return `a rule with comment ${JSON.stringify(rule.comment)}`;
  const rest = rule.expr.filter((e) => !(isRecord(e) && 'counter' in e));
  const [src, dst, masq, ...extra] = rest;
  const s = matchOf(src);
  const d = matchOf(dst);
  const okSrc =
    s?.op === '==' && s.protocol === family && s.field === 'saddr' && s.right === `@${NAT_POOLS_SET}`;
  const okDst =
    d?.op === '!=' && d.protocol === family && d.field === 'daddr' && d.right === `@${NAT_ALL_POOLS_SET}`;
  let okMasq = false;
  if (isRecord(masq) && 'masquerade' in masq) {
    const body = masq['masquerade'];
    const flags = isRecord(body) ? strings(body['flags']) : [];
    const other = isRecord(body) ? Object.keys(body).filter((k) => k !== 'flags') : [];
    okMasq =
      other.length === 0 &&
      flags.every((f) => f === 'fully-random') &&
      flags.includes('fully-random') === fullyRandom;
  }
  if (okSrc && okDst && okMasq && extra.length === 0) return undefined;
  return `the rule differs: ${JSON.stringify(rule.expr)}`;
}

/**
 * The differences between one family's table as read (undefined: absent) and what the plan
 * wants there (undefined: no table); empty when they agree.
 */
export function natTableDiff(
  plan: NatPlan,
  want: NatTablePlan | undefined,
  family: NftFamily,
  objects: readonly NftObject[] | undefined,
): string[] {
  const where = `table ${family} ${plan.table}`;
  if (want === undefined)
    return objects === undefined ? [] : [`${where} exists but no pool of the family needs NAT`];
  if (objects === undefined) return [`${where} is missing`];
  const sets = new Map<string, SetState>();
  const chains = new Map<string, ChainState>();
  const rules: RuleState[] = [];
  const out: string[] = [];
  for (const o of objects) {
    const [kind] = Object.keys(o);
    const body = kind === undefined ? undefined : o[kind];
    if (!isRecord(body)) continue;
    const name = String(body['name']);
    switch (kind) {
      case 'metainfo':
      case 'table':
        break;
      case 'set':
        sets.set(name, {
          type: body['type'],
          flags: strings(body['flags']),
          elements: (Array.isArray(body['elem']) ? body['elem'] : []).map(elementText).sort(),
        });
        break;
      case 'chain':
        chains.set(name, {
          type: body['type'],
          hook: body['hook'],
          prio: body['prio'],
          policy: body['policy'],
        });
        break;
      case 'rule':
        rules.push({
          chain: body['chain'],
          comment: body['comment'],
          expr: Array.isArray(body['expr']) ? body['expr'] : [],
        });
        break;
      default:
        out.push(`${where} holds a ${kind} ${name} we did not write`);
    }
  }
  const addrType = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  for (const [name, cidrs] of [
    [NAT_ALL_POOLS_SET, want.allPools],
    [NAT_POOLS_SET, want.natPools],
  ] as const) {
    const s = sets.get(name);
    sets.delete(name);
    if (s === undefined) out.push(`${where}: set ${name} is missing`);
    else {
      if (s.type !== addrType || s.flags.length !== 1 || s.flags[0] !== 'interval')
        out.push(`${where}: set ${name} is not an interval set of ${addrType}`);
      const wanted = [...cidrs].sort();
      if (s.elements.join(',') !== wanted.join(','))
        out.push(`${where}: set ${name} holds {${s.elements.join(', ')}}, wanted {${wanted.join(', ')}}`);
    }
  }
  for (const name of sets.keys()) out.push(`${where} holds a set ${name} we did not write`);
  const c = chains.get(NAT_CHAIN);
  chains.delete(NAT_CHAIN);
  if (c === undefined) out.push(`${where}: chain ${NAT_CHAIN} is missing`);
  else if (c.type !== 'nat' || c.hook !== 'postrouting' || c.prio !== 100 || c.policy !== 'accept')
    out.push(
      `${where}: chain ${NAT_CHAIN} is not a nat chain at hook postrouting priority srcnat, policy accept`,
    );
  for (const name of chains.keys()) out.push(`${where} holds a chain ${name} we did not write`);
  const ours = rules.filter((r) => r.chain === NAT_CHAIN);
  if (ours.length !== rules.length) out.push(`${where} holds rules in chains we did not write`);
  if (ours.length !== 1) out.push(`${where}: chain ${NAT_CHAIN} holds ${ours.length} rules, wanted 1`);
  else {
    const why = ruleDiff(ours[0]!, family, plan.fullyRandom);
    if (why !== undefined) out.push(`${where}: ${why}`);
  }
  return out;
}
