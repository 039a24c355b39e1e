// Tokenizer and parser for the BIRD config subset Calico's confd templates write, and a bit
// beyond. The lexical rules follow BIRD's own lexer (conf/cf-lex.l in projectcalico/bird, the
// BIRD 1.6 fork Calico ships, and in CZ-NIC/bird v2); the filter grammar follows
// filter/config.Y and conf/confbase.Y, including its precedence: `&&` and `||` share ONE
// left-associative level (`a || b && c` is `(a || b) && c`), comparisons do not chain, and `!`
// binds tighter than any binary operator.
//
// The parser keeps protocol options as phrases (words, values and nested blocks) and leaves
// their meaning to normalize.ts, so an option it has never heard of still parses.
import { formatIp, parseIp } from '@tabby/datastore';

export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** A syntax error, located by file, 1-based line and 1-based column. */
export class BirdParseError extends Error {
  override readonly name = 'BirdParseError';
  constructor(
    readonly loc: SourceLoc,
    readonly reason: string,
  ) {
    super(`${loc.file}:${loc.line}:${loc.column}: ${reason}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens

export type TokenKind = 'word' | 'num' | 'ip4' | 'ip6' | 'str' | 'punct' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** word: the symbol without quotes; str: the text between the quotes; others: as written. */
  readonly text: string;
  /** A word written as a quoted symbol ('bgp_name-with-dash'). */
  readonly quoted: boolean;
  readonly loc: SourceLoc;
}

// Multi-character operators of cf-lex.l (and BIRD 2's `->` for function return types).
const PUNCT2 = new Set(['!=', '!~', '<=', '>=', '&&', '||', '..', '[=', '=]', '->']);
const PUNCT1 = new Set([...'={}:;,.()+*/%<>~[]?!|-']);
// cf-lex.l's IPv6 pattern: ({XIGIT}*::|({XIGIT}*:){3,})({XIGIT}*|{DIGIT}+.{DIGIT}+.{DIGIT}+.{DIGIT}+)
const IP6_RE = /(?:[0-9a-fA-F]*::|(?:[0-9a-fA-F]*:){3,})(?:\d+\.\d+\.\d+\.\d+|[0-9a-fA-F]*)/y;
const IP4_RE = /\d+\.\d+\.\d+\.\d+/y;
const HEX_RE = /0x[0-9a-fA-F]+/y;
const DEC_RE = /\d+/y;
const WORD_RE = /[A-Za-z_][A-Za-z0-9_]*/y;
// cf-lex.l: ['] ({ALNUM}|[-]|[.:])* [']
const QSYM_RE = /'([A-Za-z0-9_.:-]*)'/y;

function matchAt(re: RegExp, text: string, pos: number): string | undefined {
  re.lastIndex = pos;
  const m = re.exec(text);
  return m === null ? undefined : m[0];
}

/** Splits one file into tokens; comments and whitespace are dropped. */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let pos = 0;
  let line = 1;
  let lineStart = 0;
  const here = (p: number): SourceLoc => ({ file, line, column: p - lineStart + 1 });
  const push = (kind: TokenKind, tokText: string, start: number, quoted = false): void => {
    out.push({ kind, text: tokText, quoted, loc: here(start) });
  };
  while (pos < text.length) {
    const c = text[pos] as string;
    if (c === '\n') {
      pos++;
      line++;
      lineStart = pos;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      pos++;
      continue;
    }
    if (c === '#') {
      while (pos < text.length && text[pos] !== '\n') pos++;
      continue;
    }
    if (c === '/' && text[pos + 1] === '*') {
      const start = here(pos);
      pos += 2;
      for (;;) {
        if (pos >= text.length) throw new BirdParseError(start, 'unterminated comment');
        if (text[pos] === '*' && text[pos + 1] === '/') {
          pos += 2;
          break;
        }
        if (text[pos] === '/' && text[pos + 1] === '*') {
          throw new BirdParseError(here(pos), 'comment nesting not supported');
        }
        if (text[pos] === '\n') {
          line++;
          lineStart = pos + 1;
        }
        pos++;
      }
      continue;
    }
    if (c === '"') {
      // cf-lex.l: ["][^"\n]*["]; BIRD 1 knows no escapes inside strings.
      const end = text.indexOf('"', pos + 1);
      const nl = text.indexOf('\n', pos + 1);
      if (end < 0 || (nl >= 0 && nl < end)) throw new BirdParseError(here(pos), 'unterminated string');
      push('str', text.slice(pos + 1, end), pos);
      pos = end + 1;
      continue;
    }
    if (c === "'") {
      const q = matchAt(QSYM_RE, text, pos);
      if (q === undefined) throw new BirdParseError(here(pos), 'unterminated or invalid quoted symbol');
      if (q.length === 2) throw new BirdParseError(here(pos), 'empty quoted symbol');
      push('word', q.slice(1, -1), pos, true);
      pos += q.length;
      continue;
    }
    if (/[0-9A-Za-z_:]/.test(c)) {
      // flex takes the longest match; on a tie, the rule listed first (IPv4, IPv6, hex,
      // decimal, `else:`, symbol).
      const cands: [TokenKind | 'elsecol', string | undefined][] = [
        ['ip4', matchAt(IP4_RE, text, pos)],
        ['ip6', matchAt(IP6_RE, text, pos)],
        ['num', matchAt(HEX_RE, text, pos)],
        ['num', matchAt(DEC_RE, text, pos)],
        ['elsecol', text.startsWith('else:', pos) ? 'else:' : undefined],
        ['word', matchAt(WORD_RE, text, pos)],
      ];
      let best: [TokenKind | 'elsecol', string] | undefined;
      for (const [kind, m] of cands) {
        if (m !== undefined && m.length > 0 && (best === undefined || m.length > best[1].length))
          best = [kind, m];
      }
      if (best !== undefined) {
        const [kind, m] = best;
        if (kind === 'elsecol') push('word', 'else:', pos);
        else push(kind, m, pos);
        pos += m.length;
        continue;
      }
    }
    const two = text.slice(pos, pos + 2);
    if (PUNCT2.has(two)) {
      push('punct', two, pos);
      pos += 2;
      continue;
    }
    if (PUNCT1.has(c)) {
      push('punct', c, pos);
      pos++;
      continue;
    }
    throw new BirdParseError(here(pos), `unknown character ${JSON.stringify(c)}`);
  }
  out.push({ kind: 'eof', text: '', quoted: false, loc: here(pos) });
  return out;
}

// BIRD's MAX_INCLUDE_DEPTH (conf/conf.h).
const MAX_INCLUDE_DEPTH = 8;

function dirOf(file: string): string {
  const i = file.lastIndexOf('/');
  return i < 0 ? '' : file.slice(0, i + 1);
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/**
 * Tokens of `entry` with every `include "file";` replaced by that file's tokens, as BIRD's
 * lexer does (it switches input files, so an include may appear anywhere). Names resolve
 * as given, then relative to the including file; a name with `*` or `?` includes every
 * matching file in name order, as BIRD's glob does.
 */
function tokenizeWithIncludes(files: ReadonlyMap<string, string>, entry: string): Token[] {
  const text = files.get(entry);
  if (text === undefined) {
    throw new BirdParseError({ file: entry, line: 1, column: 1 }, `file ${JSON.stringify(entry)} not found`);
  }
  const out: Token[] = [];
  const expand = (toks: Token[], depth: number): void => {
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i] as Token;
      const name = toks[i + 1];
      const semi = toks[i + 2];
      if (t.kind === 'word' && !t.quoted && t.text === 'include' && name?.kind === 'str') {
        if (semi?.kind !== 'punct' || semi.text !== ';') {
          throw new BirdParseError(name.loc, 'expected ";" after include file name');
        }
        if (name.text === '') throw new BirdParseError(name.loc, 'include with empty argument');
        if (depth >= MAX_INCLUDE_DEPTH) throw new BirdParseError(t.loc, 'includes nested too deeply');
        for (const target of resolveInclude(files, name.text, t.loc.file, name.loc)) {
          const inner = tokenize(files.get(target) as string, target);
          inner.pop(); // its eof
          expand(inner, depth + 1);
        }
        i += 2;
        continue;
      }
      out.push(t);
    }
  };
  const toks = tokenize(text, entry);
  const eof = toks.pop() as Token;
  expand(toks, 0);
  out.push(eof);
  return out;
}

function resolveInclude(
  files: ReadonlyMap<string, string>,
  name: string,
  from: string,
  at: SourceLoc,
): string[] {
  const candidates = name.startsWith('/') ? [name] : [name, dirOf(from) + name];
  if (/[*?]/.test(name)) {
    for (const cand of candidates) {
      const re = globToRegExp(cand);
      const hits = [...files.keys()].filter((k) => re.test(k)).sort();
      if (hits.length > 0) return hits;
    }
    return []; // BIRD: a glob matching nothing includes nothing.
  }
  for (const cand of candidates) if (files.has(cand)) return [cand];
  throw new BirdParseError(at, `included file ${JSON.stringify(name)} not found`);
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

export type BinaryOp =
  '&&' | '||' | '=' | '!=' | '<' | '<=' | '>' | '>=' | '~' | '!~' | '+' | '-' | '*' | '/' | '%';

export type Expr =
  | { readonly kind: 'num'; readonly value: number }
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  /** Canonical text (RFC 5952 for IPv6). */
  | { readonly kind: 'ip'; readonly value: string }
  /** Canonical `addr/len`; min/max are set only for prefix-set patterns (`+`, `-`, `{a,b}`). */
  | {
      readonly kind: 'prefix';
      readonly value: string;
      readonly len: number;
      readonly min?: number;
      readonly max?: number;
    }
  /** A symbol, route attribute or enum constant (net, ifname, RTS_BGP, a define, a variable). */
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'set'; readonly items: readonly Expr[] }
  /** `(a, b)` pair, `(a, b, c)` large community, `(rt, a, b)` extended community. */
  | { readonly kind: 'tuple'; readonly items: readonly Expr[] }
  /** `[= 1 2 * =]` or `/1 2 ?/`: the mask's elements as written. */
  | { readonly kind: 'pathmask'; readonly items: readonly string[] }
  /** `a..b` inside sets and tuples. */
  | { readonly kind: 'range'; readonly from: Expr; readonly to: Expr }
  /** `*` inside set tuples. */
  | { readonly kind: 'wildcard' }
  /** `+empty+`, `-empty-`, `--empty--`, `---empty---`. */
  | { readonly kind: 'empty'; readonly text: string }
  | { readonly kind: 'not'; readonly arg: Expr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  /** A function call, including `defined(x)` and BIRD 1's `add(a, b)` forms. */
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[] }
  /** `x.len`, `x.add(y)`: args is absent for a property, present for a method. */
  | {
      readonly kind: 'member';
      readonly object: Expr;
      readonly name: string;
      readonly args?: readonly Expr[];
    };

export type ActionWord = 'accept' | 'reject' | 'error' | 'quitbird' | 'print' | 'printn';

export interface CaseArm {
  /** Labels; empty for `else:`. */
  readonly labels: readonly Expr[];
  readonly body: readonly Stmt[];
}

export type Stmt =
  | {
      readonly kind: 'if';
      readonly cond: Expr;
      readonly then: readonly Stmt[];
      readonly else?: readonly Stmt[];
      readonly loc: SourceLoc;
    }
  | { readonly kind: 'block'; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  | {
      readonly kind: 'action';
      readonly action: ActionWord;
      readonly args: readonly Expr[];
      readonly loc: SourceLoc;
    }
  | { readonly kind: 'return'; readonly value: Expr; readonly loc: SourceLoc }
  | { readonly kind: 'assign'; readonly target: Expr; readonly value: Expr; readonly loc: SourceLoc }
  /** A call or method call used as a statement (`f();`, `bgp_community.add((1,2));`). */
  | { readonly kind: 'expr'; readonly expr: Expr; readonly loc: SourceLoc }
  | {
      readonly kind: 'case';
      readonly subject: Expr;
      readonly arms: readonly CaseArm[];
      readonly loc: SourceLoc;
    }
  | { readonly kind: 'unset'; readonly target: Expr; readonly loc: SourceLoc }
  /** A local variable (BIRD 1: before the body; BIRD 2.14+: anywhere). */
  | {
      readonly kind: 'decl';
      readonly type: string;
      readonly name: string;
      readonly value?: Expr;
      readonly loc: SourceLoc;
    };

/** One element of an option phrase such as `neighbor 10.0.0.1 port 179 as 64512`. */
export type Atom =
  | { readonly kind: 'token'; readonly token: Token }
  /** An IPv4/IPv6 address, canonical. */
  | { readonly kind: 'ip'; readonly value: string; readonly loc: SourceLoc }
  /** `addr/len`, canonical. */
  | { readonly kind: 'prefix'; readonly value: string; readonly loc: SourceLoc }
  /** `{ states, routes }`: comma-separated phrases. */
  | { readonly kind: 'list'; readonly items: readonly (readonly Atom[])[]; readonly loc: SourceLoc }
  /** `ipv4 { import all; }`: nested options. */
  | { readonly kind: 'block'; readonly items: readonly OptionItem[]; readonly loc: SourceLoc }
  /** `filter { ... }` after import/export. */
  | { readonly kind: 'filter'; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  /** `where <expr>` after import/export. */
  | { readonly kind: 'where'; readonly cond: Expr; readonly loc: SourceLoc };

export interface OptionItem {
  readonly phrase: readonly Atom[];
  readonly loc: SourceLoc;
}

export interface Param {
  readonly type: string;
  readonly name: string;
}

export type TopItem =
  | {
      readonly kind: 'function';
      readonly name: string;
      readonly params: readonly Param[];
      readonly returnType?: string;
      readonly body: readonly Stmt[];
      readonly loc: SourceLoc;
    }
  | {
      readonly kind: 'filter';
      readonly name: string;
      readonly body: readonly Stmt[];
      readonly loc: SourceLoc;
    }
  | { readonly kind: 'define'; readonly name: string; readonly value: Expr; readonly loc: SourceLoc }
  | {
      readonly kind: 'protocol';
      /** `template bgp NAME { }` rather than `protocol bgp NAME { }`. */
      readonly template: boolean;
      readonly type: string;
      readonly name?: string;
      readonly from?: string;
      readonly items: readonly OptionItem[];
      readonly loc: SourceLoc;
    }
  /** Any other top-level statement: `router id 1.2.3.4;`, `listen bgp port 179;`, `log ...;`. */
  | { readonly kind: 'statement'; readonly phrase: readonly Atom[]; readonly loc: SourceLoc };

/** A whole config with its includes spliced in; each node's loc names its own file. */
export interface BirdConfig {
  readonly entry: string;
  readonly items: readonly TopItem[];
}

// Filter types (filter/config.Y `type`), for parameters and local variables.
const TYPE_WORDS = new Set([
  'int',
  'bool',
  'ip',
  'prefix',
  'pair',
  'quad',
  'ec',
  'lc',
  'string',
  'bytestring',
  'bgpmask',
  'bgppath',
  'clist',
  'eclist',
  'lclist',
  'rd',
  'route',
  'void',
]);
const ACTIONS = new Set<string>(['accept', 'reject', 'error', 'quitbird', 'print', 'printn']);
const CMP_OPS = new Set<string>(['=', '!=', '<', '<=', '>', '>=', '~', '!~']);
// Words that open a channel block in a BIRD 2 protocol (net_type and bgp_afi).
const CHANNEL_WORDS = new Set([
  'ipv4',
  'ipv6',
  'vpn4',
  'vpn6',
  'roa4',
  'roa6',
  'flow4',
  'flow6',
  'mpls',
  'aspa',
  'eth',
  'evpn',
]);

// ---------------------------------------------------------------------------------------------
// Parser

class Parser {
  private pos = 0;
  constructor(private readonly toks: readonly Token[]) {}

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.pos + ahead, this.toks.length - 1)] as Token;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }
  private isPunct(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'punct' && t.text === text;
  }
  /** A bare (unquoted) word: keywords are never quoted. */
  private isWord(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'word' && !t.quoted && t.text === text;
  }
  private fail(t: Token, what: string): never {
    const got = t.kind === 'eof' ? 'end of input' : JSON.stringify(t.kind === 'str' ? `"${t.text}"` : t.text);
    throw new BirdParseError(t.loc, `expected ${what}, got ${got}`);
  }
  private expectPunct(text: string): Token {
    if (!this.isPunct(text)) this.fail(this.peek(), `"${text}"`);
    return this.next();
  }
  private expectWord(text: string): Token {
    if (!this.isWord(text)) this.fail(this.peek(), `"${text}"`);
    return this.next();
  }
  private symbol(what = 'a name'): Token {
    const t = this.peek();
    if (t.kind !== 'word') this.fail(t, what);
    return this.next();
  }

  config(entry: string): BirdConfig {
    const items: TopItem[] = [];
    while (this.peek().kind !== 'eof') {
      if (this.isPunct(';')) {
        this.next();
        continue;
      }
      items.push(this.topItem());
    }
    return { entry, items };
  }

  private topItem(): TopItem {
    const t = this.peek();
    if (this.isWord('function')) return this.functionDef();
    if (this.isWord('filter')) return this.filterDef();
    if (this.isWord('define')) {
      this.next();
      const name = this.symbol('a constant name').text;
      this.expectPunct('=');
      const value = this.expr();
      this.expectPunct(';');
      return { kind: 'define', name, value, loc: t.loc };
    }
    if (this.isWord('protocol') || this.isWord('template')) return this.protocolDef();
    return { kind: 'statement', phrase: this.phrase(), loc: t.loc };
  }

  private functionDef(): TopItem {
    const loc = this.expectWord('function').loc;
    const name = this.symbol('a function name').text;
    this.expectPunct('(');
    const params: Param[] = [];
    // filter/config.Y function_args: parameters are separated by `;`, as declarations are.
    while (!this.isPunct(')')) {
      if (params.length > 0) this.expectPunct(';');
      params.push(this.param());
    }
    this.expectPunct(')');
    let returnType: string | undefined;
    if (this.isPunct('->')) {
      this.next();
      returnType = this.typeName();
    }
    const body = this.bodyWithDecls();
    return returnType === undefined
      ? { kind: 'function', name, params, body, loc }
      : { kind: 'function', name, params, returnType, body, loc };
  }

  private filterDef(): TopItem {
    const loc = this.expectWord('filter').loc;
    const name = this.symbol('a filter name').text;
    return { kind: 'filter', name, body: this.bodyWithDecls(), loc };
  }

  private param(): Param {
    const type = this.typeName();
    return { type, name: this.symbol('a parameter name').text };
  }

  private typeName(): string {
    const t = this.peek();
    if (t.kind !== 'word' || t.quoted || !TYPE_WORDS.has(t.text)) this.fail(t, 'a type');
    this.next();
    if (!this.isWord('set')) return t.text;
    this.next();
    return `${t.text} set`;
  }

  /** BIRD 1's `decls '{' cmds '}'`: local variables before the braces become decl statements. */
  private bodyWithDecls(): Stmt[] {
    const decls: Stmt[] = [];
    while (!this.isPunct('{')) {
      const loc = this.peek().loc;
      const p = this.param();
      this.expectPunct(';');
      decls.push({ kind: 'decl', type: p.type, name: p.name, loc });
    }
    return [...decls, ...this.block()];
  }

  private protocolDef(): TopItem {
    const head = this.next();
    const template = head.text === 'template';
    const type = this.symbol('a protocol type').text;
    let name: string | undefined;
    let from: string | undefined;
    if (this.peek().kind === 'word' && !this.isWord('from')) name = this.next().text;
    if (this.isWord('from')) {
      this.next();
      from = this.symbol('a template name').text;
    }
    const items = this.optionBlock();
    const base = { kind: 'protocol' as const, template, type, items, loc: head.loc };
    return {
      ...base,
      ...(name === undefined ? {} : { name }),
      ...(from === undefined ? {} : { from }),
    };
  }

  /** `{ item; item; block { ... } }` */
  private optionBlock(): OptionItem[] {
    this.expectPunct('{');
    const items: OptionItem[] = [];
    while (!this.isPunct('}')) {
      if (this.isPunct(';')) {
        this.next();
        continue;
      }
      if (this.peek().kind === 'eof') this.fail(this.peek(), '"}"');
      const loc = this.peek().loc;
      items.push({ phrase: this.phrase(), loc });
    }
    this.next();
    return items;
  }

  /**
   * One option or top-level statement, up to its `;` (or up to the `}` of a nested option
   * block or inline filter, after which a `;` is optional).
   */
  private phrase(): Atom[] {
    const atoms: Atom[] = [];
    const leadingWords = (): string[] => {
      const w: string[] = [];
      for (const a of atoms) {
        if (a.kind !== 'token' || a.token.kind !== 'word' || a.token.quoted) break;
        w.push(a.token.text);
      }
      return w;
    };
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') this.fail(t, '";"');
      if (t.kind === 'punct' && t.text === ';') {
        this.next();
        if (atoms.length === 0) this.fail(t, 'an option');
        return atoms;
      }
      if (t.kind === 'punct' && t.text === '}') this.fail(t, '";"');
      const words = leadingWords();
      const imex = words.length === atoms.length && (words[0] === 'import' || words[0] === 'export');
      if (t.kind === 'punct' && t.text === '{') {
        if (imex && words.length === 2 && words[1] === 'filter') {
          atoms.push({ kind: 'filter', body: this.block(), loc: t.loc });
          this.optionalSemicolon();
          return atoms;
        }
        if ((words.length === atoms.length && CHANNEL_WORDS.has(words[0] ?? '')) || this.braceHoldsItems()) {
          atoms.push({ kind: 'block', items: this.optionBlock(), loc: t.loc });
          this.optionalSemicolon();
          return atoms;
        }
        atoms.push(this.braceList());
        continue;
      }
      if (imex && words.length === 1 && this.isWord('where')) {
        const w = this.next();
        atoms.push({ kind: 'where', cond: this.expr(), loc: w.loc });
        continue;
      }
      atoms.push(this.valueAtom());
    }
  }

  private optionalSemicolon(): void {
    if (this.isPunct(';')) this.next();
  }

  /** Whether the `{` at the cursor opens a list of `;`-terminated items rather than a value list. */
  private braceHoldsItems(): boolean {
    let depth = 0;
    for (let i = this.pos; i < this.toks.length; i++) {
      const t = this.toks[i] as Token;
      if (t.kind === 'eof') return false;
      if (t.kind !== 'punct') continue;
      if (t.text === '{') depth++;
      else if (t.text === '}') {
        depth--;
        if (depth === 0) return false;
      } else if (t.text === ';' && depth === 1) return true;
    }
    return false;
  }

  private braceList(): Atom {
    const open = this.expectPunct('{');
    const items: Atom[][] = [];
    let cur: Atom[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') this.fail(t, '"}"');
      if (t.kind === 'punct' && t.text === '}') {
        this.next();
        if (cur.length > 0) items.push(cur);
        return { kind: 'list', items, loc: open.loc };
      }
      if (t.kind === 'punct' && t.text === ',') {
        this.next();
        if (cur.length === 0) this.fail(t, 'a list item');
        items.push(cur);
        cur = [];
        continue;
      }
      if (t.kind === 'punct' && t.text === '{') {
        cur.push(this.braceList());
        continue;
      }
      cur.push(this.valueAtom());
    }
  }

  /** A token, joining `addr/len` into a prefix and canonicalizing addresses. */
  private valueAtom(): Atom {
    const t = this.next();
    if (t.kind === 'ip4' || t.kind === 'ip6') {
      const ip = canonicalIp(t);
      if (this.isPunct('/') && this.peek(1).kind === 'num') {
        this.next();
        const lenTok = this.next();
        return { kind: 'prefix', value: canonicalPrefix(ip, t, lenTok).value, loc: t.loc };
      }
      return { kind: 'ip', value: ip, loc: t.loc };
    }
    return { kind: 'token', token: t };
  }

  // --- filter statements ---------------------------------------------------------------------

  /** `{ cmds }` */
  private block(): Stmt[] {
    this.expectPunct('{');
    const body: Stmt[] = [];
    while (!this.isPunct('}')) {
      if (this.peek().kind === 'eof') this.fail(this.peek(), '"}"');
      body.push(this.stmt());
    }
    this.next();
    return body;
  }

  private stmt(): Stmt {
    const t = this.peek();
    const loc = t.loc;
    if (t.kind === 'punct' && t.text === '{') return { kind: 'block', body: this.block(), loc };
    if (t.kind === 'punct' && t.text === ';') {
      // BIRD's grammar has no empty statement; accept one quietly, as an empty block.
      this.next();
      return { kind: 'block', body: [], loc };
    }
    if (t.kind === 'word' && !t.quoted) {
      switch (t.text) {
        case 'if': {
          this.next();
          const cond = this.expr();
          this.expectWord('then');
          const then = this.branch();
          if (this.isWord('else')) {
            this.next();
            return { kind: 'if', cond, then, else: this.branch(), loc };
          }
          return { kind: 'if', cond, then, loc };
        }
        case 'return': {
          this.next();
          const value = this.expr();
          this.expectPunct(';');
          return { kind: 'return', value, loc };
        }
        case 'case':
          return this.caseStmt();
        case 'unset': {
          this.next();
          this.expectPunct('(');
          const target = this.postfix();
          this.expectPunct(')');
          this.expectPunct(';');
          return { kind: 'unset', target, loc };
        }
        default:
          break;
      }
      if (ACTIONS.has(t.text)) {
        this.next();
        const args: Expr[] = [];
        while (!this.isPunct(';')) {
          if (args.length > 0) this.expectPunct(',');
          else if (this.isPunct('}')) this.fail(this.peek(), '";"');
          args.push(this.expr());
        }
        this.next();
        return { kind: 'action', action: t.text as ActionWord, args, loc };
      }
      if (TYPE_WORDS.has(t.text) && this.peek(1).kind === 'word' && !this.isPunct('(', 1)) {
        const p = this.param();
        if (this.isPunct('=')) {
          this.next();
          const value = this.expr();
          this.expectPunct(';');
          return { kind: 'decl', type: p.type, name: p.name, value, loc };
        }
        this.expectPunct(';');
        return { kind: 'decl', type: p.type, name: p.name, loc };
      }
    }
    // An assignment or a call; `=` here assigns, so parse only a postfix expression first.
    const target = this.postfix();
    if (this.isPunct('=')) {
      this.next();
      const value = this.expr();
      this.expectPunct(';');
      if (target.kind !== 'name' && target.kind !== 'member') this.fail(t, 'an assignable name');
      return { kind: 'assign', target, value, loc };
    }
    if (target.kind === 'member' && target.args === undefined && target.name === 'empty') {
      // `bgp_community.empty;`
      this.expectPunct(';');
      return { kind: 'expr', expr: target, loc };
    }
    if (target.kind !== 'call' && !(target.kind === 'member' && target.args !== undefined)) {
      this.fail(this.peek(), 'a statement');
    }
    this.expectPunct(';');
    return { kind: 'expr', expr: target, loc };
  }

  /** The statement after `then`/`else`: a braced block's contents or a single statement. */
  private branch(): Stmt[] {
    if (this.isPunct('{')) return this.block();
    return [this.stmt()];
  }

  private caseStmt(): Stmt {
    const loc = this.expectWord('case').loc;
    const subject = this.expr();
    this.expectPunct('{');
    const arms: CaseArm[] = [];
    while (!this.isPunct('}')) {
      if (this.peek().kind === 'eof') this.fail(this.peek(), '"}"');
      let labels: Expr[] = [];
      if (this.isWord('else:')) {
        this.next();
      } else if (this.isWord('else') && this.isPunct(':', 1)) {
        this.next();
        this.next();
      } else {
        labels = [this.setItem()];
        while (this.isPunct(',')) {
          this.next();
          labels.push(this.setItem());
        }
        this.expectPunct(':');
      }
      const body: Stmt[] = [];
      while (!this.isPunct('}') && !this.atCaseLabel()) {
        if (this.peek().kind === 'eof') this.fail(this.peek(), '"}"');
        body.push(this.stmt());
      }
      arms.push({ labels, body });
    }
    this.next();
    return { kind: 'case', subject, arms, loc };
  }

  /** A case label is followed by `:` before any `;` or `{`. */
  private atCaseLabel(): boolean {
    if (this.isWord('else:') || (this.isWord('else') && this.isPunct(':', 1))) return true;
    let depth = 0;
    for (let i = this.pos; i < this.toks.length; i++) {
      const t = this.toks[i] as Token;
      if (t.kind === 'eof') return false;
      if (t.kind !== 'punct') continue;
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') depth--;
      else if (depth === 0 && (t.text === ';' || t.text === '{' || t.text === '}')) return false;
      else if (depth === 0 && t.text === ':') return true;
    }
    return false;
  }

  // --- expressions (conf/confbase.Y precedence) ---------------------------------------------

  expr(): Expr {
    let left = this.comparison();
    while (this.isPunct('&&') || this.isPunct('||')) {
      const op = this.next().text as BinaryOp;
      left = { kind: 'binary', op, left, right: this.comparison() };
    }
    return left;
  }

  private comparison(): Expr {
    const left = this.additive();
    const t = this.peek();
    if (t.kind === 'punct' && CMP_OPS.has(t.text)) {
      this.next();
      const right = this.additive();
      const after = this.peek();
      if (after.kind === 'punct' && CMP_OPS.has(after.text)) {
        throw new BirdParseError(after.loc, `comparisons do not chain; parenthesize before "${after.text}"`);
      }
      return { kind: 'binary', op: t.text as BinaryOp, left, right };
    }
    return left;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    while (this.isPunct('+') || this.isPunct('-')) {
      const op = this.next().text as BinaryOp;
      left = { kind: 'binary', op, left, right: this.multiplicative() };
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    while (this.isPunct('*') || this.isPunct('/') || this.isPunct('%')) {
      const op = this.next().text as BinaryOp;
      left = { kind: 'binary', op, left, right: this.unary() };
    }
    return left;
  }

  private unary(): Expr {
    if (this.isPunct('!')) {
      this.next();
      return { kind: 'not', arg: this.unary() };
    }
    return this.postfix();
  }

  private postfix(): Expr {
    let e = this.primary();
    while (this.isPunct('.')) {
      this.next();
      const name = this.symbol('a member name').text;
      if (this.isPunct('(')) {
        e = { kind: 'member', object: e, name, args: this.args() };
      } else {
        e = { kind: 'member', object: e, name };
      }
    }
    return e;
  }

  private args(): Expr[] {
    this.expectPunct('(');
    const args: Expr[] = [];
    while (!this.isPunct(')')) {
      if (args.length > 0) this.expectPunct(',');
      args.push(this.expr());
    }
    this.next();
    return args;
  }

  private primary(inSet = false): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'num':
        this.next();
        return { kind: 'num', value: parseNumber(t) };
      case 'str':
        this.next();
        return { kind: 'str', value: t.text };
      case 'ip4':
      case 'ip6': {
        this.next();
        const ip = canonicalIp(t);
        if (this.isPunct('/') && this.peek(1).kind === 'num') {
          this.next();
          return canonicalPrefix(ip, t, this.next());
        }
        return { kind: 'ip', value: ip };
      }
      case 'word': {
        this.next();
        if (!t.quoted && (t.text === 'true' || t.text === 'false'))
          return { kind: 'bool', value: t.text === 'true' };
        if (this.isPunct('(')) return { kind: 'call', name: t.text, args: this.args() };
        return { kind: 'name', name: t.text };
      }
      case 'punct':
        break;
      case 'eof':
        this.fail(t, 'an expression');
    }
    if (t.text === '(') {
      this.next();
      const first = this.tupleItem(inSet);
      if (this.isPunct(',')) {
        const items = [first];
        while (this.isPunct(',')) {
          this.next();
          items.push(this.tupleItem(inSet));
        }
        this.expectPunct(')');
        return { kind: 'tuple', items };
      }
      this.expectPunct(')');
      return first;
    }
    if (t.text === '[') {
      this.next();
      const items: Expr[] = [];
      while (!this.isPunct(']')) {
        if (items.length > 0) this.expectPunct(',');
        items.push(this.setItem());
      }
      this.next();
      return { kind: 'set', items };
    }
    if (t.text === '[=' || t.text === '/') {
      this.next();
      const close = t.text === '[=' ? '=]' : '/';
      const items: string[] = [];
      while (!this.isPunct(close)) {
        const x = this.next();
        if (x.kind === 'eof') this.fail(x, `"${close}"`);
        items.push(x.kind === 'num' ? String(parseNumber(x)) : x.text);
      }
      this.next();
      return { kind: 'pathmask', items };
    }
    if (t.text === '+' || t.text === '-') {
      // +empty+ and its -empty-, --empty--, ---empty--- cousins
      let i = 0;
      while (this.isPunct(t.text, i)) i++;
      if (this.isWord('empty', i)) {
        let j = i + 1;
        while (this.isPunct(t.text, j)) j++;
        if (j - i - 1 === i) {
          const text = `${t.text.repeat(i)}empty${t.text.repeat(i)}`;
          for (let k = 0; k < j; k++) this.next();
          return { kind: 'empty', text };
        }
      }
    }
    this.fail(t, 'an expression');
  }

  /** An element of a tuple: inside sets it may be `*` or a range `a..b`. */
  private tupleItem(inSet: boolean): Expr {
    if (inSet && this.isPunct('*')) {
      this.next();
      return { kind: 'wildcard' };
    }
    const e = this.expr();
    if (inSet && this.isPunct('..')) {
      this.next();
      return { kind: 'range', from: e, to: this.expr() };
    }
    return e;
  }

  /** A set element: `10.0.0.0/8+`, `10.0.0.0/8{16,24}`, `1..5`, `(1, *)`, `RTS_BGP`. */
  private setItem(): Expr {
    let e: Expr;
    if (this.isPunct('(')) {
      e = this.primary(true);
      if (this.isPunct('..') && this.isPunct('(', 1)) {
        this.next();
        return { kind: 'range', from: e, to: this.primary(true) };
      }
      return e;
    }
    const first = this.peek();
    // An address starts a prefix pattern whose `+`/`-` suffix must not be read as arithmetic.
    e = first.kind === 'ip4' || first.kind === 'ip6' ? this.primary() : this.additive();
    if (e.kind === 'prefix') {
      const len = e.len;
      const bits = e.value.includes(':') ? 128 : 32;
      if (this.isPunct('+')) {
        this.next();
        return { ...e, min: len, max: bits };
      }
      if (this.isPunct('-')) {
        this.next();
        return { ...e, min: 0, max: len };
      }
      if (this.isPunct('{')) {
        const open = this.next();
        const min = parseNumber(this.expectKind('num'));
        this.expectPunct(',');
        const max = parseNumber(this.expectKind('num'));
        this.expectPunct('}');
        // filter/config.Y fprefix: "Invalid prefix pattern range: {%d, %d}."
        if (!(len <= min && min <= max && max <= bits)) {
          throw new BirdParseError(open.loc, `invalid prefix pattern range {${min}, ${max}} for /${len}`);
        }
        return { ...e, min, max };
      }
      return e;
    }
    if (this.isPunct('..')) {
      this.next();
      return { kind: 'range', from: e, to: this.additive() };
    }
    return e;
  }

  private expectKind(kind: TokenKind): Token {
    if (this.peek().kind !== kind) this.fail(this.peek(), kind === 'num' ? 'a number' : kind);
    return this.next();
  }
}

function parseNumber(t: Token): number {
  const v = t.text.startsWith('0x') ? parseInt(t.text.slice(2), 16) : Number(t.text);
  // cf-lex.l: "Number out of range" past 32 bits.
  if (!Number.isSafeInteger(v) || v > 0xffffffff)
    throw new BirdParseError(t.loc, `number out of range: ${t.text}`);
  return v;
}

function canonicalIp(t: Token): string {
  const a = parseIp(t.text);
  if (a === undefined || (a.family === 4) !== (t.kind === 'ip4')) {
    throw new BirdParseError(t.loc, `invalid IP address ${t.text}`);
  }
  return formatIp(a);
}

function canonicalPrefix(ip: string, at: Token, lenTok: Token): Expr & { kind: 'prefix' } {
  const len = parseNumber(lenTok);
  const a = parseIp(ip);
  const bits = a?.family === 6 ? 128 : 32;
  if (a === undefined || len > bits)
    throw new BirdParseError(lenTok.loc, `invalid prefix length /${lenTok.text}`);
  // filter/config.Y fprefix_s and confbase.Y prefix: host bits set is an error, not a rounding.
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if ((a.value & hostMask) !== 0n) throw new BirdParseError(at.loc, `invalid network prefix ${ip}/${len}`);
  return { kind: 'prefix', value: `${ip}/${len}`, len };
}

/**
 * Parses `entry` from `files` (name → text), following `include` statements through the
 * same map. Throws BirdParseError naming file, line and column.
 */
export function parseBirdFiles(files: ReadonlyMap<string, string>, entry = 'bird.cfg'): BirdConfig {
  return new Parser(tokenizeWithIncludes(files, entry)).config(entry);
}

/** Parses one self-contained text (includes resolve against nothing but itself). */
export function parseBirdText(text: string, file = 'bird.cfg'): BirdConfig {
  return parseBirdFiles(new Map([[file, text]]), file);
}
