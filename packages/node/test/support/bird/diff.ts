// Human-readable differences between two meaning models, each naming where it is:
//   protocol bgp Mesh_10_192_0_3: option "source address": expected 10.192.0.2, got (absent)
//   function calico_aggr: statement 3: expected if net = 10.0.0.0/26 then { accept; }, got ...
// Statement lists are compared in order with a longest-common-subsequence alignment, so one
// missing statement is one message, not a cascade, and a statement that only moved says so.
import type { BirdModel, BirdStmt, BirdValue } from './normalize.js';
import { own, renderStmt, symbolText } from './normalize.js';

const ABSENT = '(absent)';

function key(s: BirdStmt): string {
  return JSON.stringify(s);
}

function showValue(v: BirdValue | undefined): string {
  if (v === undefined) return ABSENT;
  if (typeof v === 'string') return v;
  return `filter { ${v.filter.map(renderStmt).join(' ')} }`;
}

type Op = { readonly del: number } | { readonly ins: number };

/** Edit script from `a` to `b`; ops between two matches share a hunk number. */
function align(a: readonly string[], b: readonly string[]): { op: Op; hunk: number }[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i:] and b[j:].
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as number[];
    const below = lcs[i + 1] as number[];
    for (let j = m - 1; j >= 0; j--) {
      row[j] =
        a[i] === b[j] ? (below[j + 1] as number) + 1 : Math.max(below[j] as number, row[j + 1] as number);
    }
  }
  const out: { op: Op; hunk: number }[] = [];
  let hunk = 0;
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
      hunk++;
    } else if (j >= m || (i < n && (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out.push({ op: { del: i++ }, hunk });
    } else {
      out.push({ op: { ins: j++ }, hunk });
    }
  }
  return out;
}

function isIf(s: BirdStmt | undefined): s is Extract<BirdStmt, { if: string }> {
  return typeof s === 'object' && 'if' in s;
}

function diffStmts(where: string, exp: readonly BirdStmt[], act: readonly BirdStmt[], out: string[]): void {
  const ek = exp.map(key);
  const ak = act.map(key);
  const ops = align(ek, ak);
  const dels = ops.flatMap((o) => ('del' in o.op ? [{ i: o.op.del, hunk: o.hunk }] : []));
  const inss = ops.flatMap((o) => ('ins' in o.op ? [{ j: o.op.ins, hunk: o.hunk }] : []));
  const usedIns = new Set<number>();
  const usedDel = new Set<number>();
  const msgs: { at: number; text: string }[] = [];
  // Same statement deleted in one place and inserted in another: it moved.
  for (const d of dels) {
    const hit = inss.find((x) => !usedIns.has(x.j) && ak[x.j] === ek[d.i]);
    if (hit === undefined) continue;
    usedIns.add(hit.j);
    usedDel.add(d.i);
    msgs.push({
      at: d.i,
      text: `${where}: statement ${d.i + 1} (${renderStmt(exp[d.i] as BirdStmt)}) moved to statement ${hit.j + 1}`,
    });
  }
  const hunks = new Set(ops.map((o) => o.hunk));
  for (const h of [...hunks].sort((x, y) => x - y)) {
    const hd = dels.filter((d) => d.hunk === h && !usedDel.has(d.i));
    const hi = inss.filter((x) => x.hunk === h && !usedIns.has(x.j));
    for (let k = 0; k < Math.max(hd.length, hi.length); k++) {
      const d = hd[k];
      const x = hi[k];
      const e = d === undefined ? undefined : exp[d.i];
      const a = x === undefined ? undefined : act[x.j];
      const at = d?.i ?? x?.j ?? 0;
      const label = `${where}: statement ${at + 1}`;
      if (isIf(e) && isIf(a) && e.if === a.if) {
        // Same condition: point into the branch that differs.
        const sub: string[] = [];
        diffStmts(`${label} (if ${e.if}) then`, e.then, a.then, sub);
        diffStmts(`${label} (if ${e.if}) else`, e.else ?? [], a.else ?? [], sub);
        for (const text of sub) msgs.push({ at, text });
        continue;
      }
      msgs.push({
        at,
        text: `${label}: expected ${e === undefined ? ABSENT : renderStmt(e)}, got ${a === undefined ? ABSENT : renderStmt(a)}`,
      });
    }
  }
  msgs.sort((x, y) => x.at - y.at);
  for (const m of msgs) out.push(m.text);
}

function diffValue(where: string, e: BirdValue | undefined, a: BirdValue | undefined, out: string[]): void {
  if (JSON.stringify(e) === JSON.stringify(a)) return;
  if (typeof e === 'object' && typeof a === 'object') {
    diffStmts(where, e.filter, a.filter, out);
    return;
  }
  out.push(`${where}: expected ${showValue(e)}, got ${showValue(a)}`);
}

function keysOf(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

/** Differences between two normalized configs, `expected` first; empty when they mean the same. */
export function diffBird(expected: BirdModel, actual: BirdModel): string[] {
  const out: string[] = [];

  for (const k of keysOf(expected.globals, actual.globals)) {
    diffValue(`global "${k}"`, own(expected.globals, k), own(actual.globals, k), out);
  }

  for (const name of keysOf(expected.functions, actual.functions)) {
    const e = own(expected.functions, name);
    const a = own(actual.functions, name);
    const where = `function ${symbolText(name)}`;
    if (e === undefined || a === undefined) {
      out.push(`${where}: ${e === undefined ? 'unexpected (not in expected)' : 'missing (not in actual)'}`);
      continue;
    }
    const ep = `(${e.params.join(', ')})${e.returnType === undefined ? '' : ` -> ${e.returnType}`}`;
    const ap = `(${a.params.join(', ')})${a.returnType === undefined ? '' : ` -> ${a.returnType}`}`;
    if (ep !== ap) out.push(`${where}: parameters: expected ${ep}, got ${ap}`);
    diffStmts(where, e.body, a.body, out);
  }

  for (const name of keysOf(expected.filters, actual.filters)) {
    const e = own(expected.filters, name);
    const a = own(actual.filters, name);
    const where = `filter ${symbolText(name)}`;
    if (e === undefined || a === undefined) {
      out.push(`${where}: ${e === undefined ? 'unexpected (not in expected)' : 'missing (not in actual)'}`);
      continue;
    }
    diffStmts(where, e.body, a.body, out);
  }

  for (const k of keysOf(expected.protocols, actual.protocols)) {
    const e = own(expected.protocols, k);
    const a = own(actual.protocols, k);
    const p = e ?? a;
    if (p === undefined) continue;
    const where = `protocol ${p.type} ${symbolText(p.name)}`;
    if (e === undefined || a === undefined) {
      out.push(`${where}: ${e === undefined ? 'unexpected (not in expected)' : 'missing (not in actual)'}`);
      continue;
    }
    for (const o of keysOf(e.options, a.options)) {
      diffValue(`${where}: option "${o}"`, own(e.options, o), own(a.options, o), out);
    }
    for (const r of keysOf(e.routes, a.routes)) {
      diffValue(`${where}: route ${r}`, own(e.routes, r), own(a.routes, r), out);
    }
  }
  return out;
}
