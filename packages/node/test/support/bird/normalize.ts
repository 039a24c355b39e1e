// From a parsed BIRD config to a plain JSON meaning model, such that two configs BIRD would
// treat identically compare deep-equal and real differences do not:
// - templates (and `from` protocols) are copied into each protocol, as BIRD's
//   proto_copy_config() does, then the protocol's own options override them; templates
//   themselves are not in the model (BIRD never runs one);
// - options become canonical key → canonical value (`neighbor A port P as N` is three keys);
//   an option equal to BIRD's default is dropped, so `passive off` equals no `passive`;
// - function and filter bodies are statement trees of canonical text, order kept;
// - `define`d constants are substituted where used and are not in the model.
//
// Defaults are those of BIRD 1.6 as forked by Calico (github.com/projectcalico/bird, the
// BIRD its calico/node image runs and its confd templates are written for); each entry in
// DEFAULTS names where that source sets it.
//
// Not equated, though BIRD would run them alike: statements after an unconditional
// accept/reject, `if !c then a else b` against `if c then b else a`, prefix sets that cover
// the same space with different items, a function call against the function's body, and
// options inside unfolded BIRD 2 channel blocks against their defaults.
import type { Atom, BinaryOp, BirdConfig, Expr, OptionItem, SourceLoc, Stmt, TopItem } from './parse.js';
import { BirdParseError } from './parse.js';

export interface BirdIf {
  readonly if: string;
  readonly then: readonly BirdStmt[];
  readonly else?: readonly BirdStmt[];
}

export interface BirdCase {
  readonly case: string;
  readonly arms: readonly { readonly labels: string; readonly body: readonly BirdStmt[] }[];
}

/** A statement: simple ones are their canonical text (`accept;`, `krt_tunnel = "";`). */
export type BirdStmt = string | BirdIf | BirdCase;

/** An option value: canonical text, or an inline filter's statements. */
export type BirdValue = string | { readonly filter: readonly BirdStmt[] };

export interface BirdProtocol {
  readonly type: string;
  readonly name: string;
  readonly options: Readonly<Record<string, BirdValue>>;
  /** Static routes: canonical prefix → canonical destination (`blackhole`, `via 10.0.0.1`). */
  readonly routes: Readonly<Record<string, string>>;
}

export interface BirdFunction {
  /** `bool internal_peer` */
  readonly params: readonly string[];
  readonly returnType?: string;
  readonly body: readonly BirdStmt[];
}

export interface BirdModel {
  /** Top-level settings: `router id`, `listen bgp port`, `debug protocols`, ... */
  readonly globals: Readonly<Record<string, string>>;
  readonly functions: Readonly<Record<string, BirdFunction>>;
  readonly filters: Readonly<Record<string, { readonly body: readonly BirdStmt[] }>>;
  /** Keyed `<type> <name>`; unnamed protocols get BIRD's default name (`static1`). */
  readonly protocols: Readonly<Record<string, BirdProtocol>>;
}

export interface NormalizeOptions {
  /**
   * Treat a protocol's single `ipv4 { }` or `ipv6 { }` channel block (BIRD 2 syntax) as if
   * its options were written in the protocol itself (BIRD 1 syntax, as Calico writes them),
   * so a BIRD 2 rendering compares with a BIRD 1 one. Off by default: the two are different
   * daemons' configs.
   */
  readonly foldChannels?: boolean;
}

/** `r[k]` for own keys only, so a name like `toString` never finds Object.prototype. */
export function own<V>(r: Readonly<Record<string, V>> | undefined, k: string): V | undefined {
  return r !== undefined && Object.hasOwn(r, k) ? r[k] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Expressions

const PLAIN_SYMBOL = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A symbol as BIRD would accept it back: quoted when it is not a plain identifier. */
export function symbolText(name: string): string {
  return PLAIN_SYMBOL.test(name) ? name : `'${name}'`;
}

type Defines = ReadonlyMap<string, Expr>;

interface Scope {
  readonly defines: Defines;
  /** Parameters and local variables, which shadow defines. */
  readonly locals: ReadonlySet<string>;
}

const NEGATED: Partial<Record<BinaryOp, BinaryOp>> = { '~': '!~', '!~': '~', '=': '!=', '!=': '=' };

/**
 * Rewrites an expression into the canonical shape: defines substituted, `a > b` as `b < a`
 * and `a >= b` as `b <= a` (filter/config.Y compiles them so), `!(a ~ b)` as `a !~ b`.
 */
function canonExpr(e: Expr, scope: Scope): Expr {
  switch (e.kind) {
    case 'name': {
      const d = scope.locals.has(e.name) ? undefined : scope.defines.get(e.name);
      return d ?? e;
    }
    case 'binary': {
      const left = canonExpr(e.left, scope);
      const right = canonExpr(e.right, scope);
      if (e.op === '>') return { kind: 'binary', op: '<', left: right, right: left };
      if (e.op === '>=') return { kind: 'binary', op: '<=', left: right, right: left };
      return { kind: 'binary', op: e.op, left, right };
    }
    case 'not': {
      const arg = canonExpr(e.arg, scope);
      const neg = arg.kind === 'binary' ? NEGATED[arg.op] : undefined;
      if (arg.kind === 'binary' && neg !== undefined) return { ...arg, op: neg };
      return { kind: 'not', arg };
    }
    case 'set':
      return { kind: 'set', items: e.items.map((i) => canonExpr(i, scope)) };
    case 'tuple':
      return { kind: 'tuple', items: e.items.map((i) => canonExpr(i, scope)) };
    case 'range':
      return { kind: 'range', from: canonExpr(e.from, scope), to: canonExpr(e.to, scope) };
    case 'call':
      return { kind: 'call', name: e.name, args: e.args.map((a) => canonExpr(a, scope)) };
    case 'member': {
      const object = canonExpr(e.object, scope);
      return e.args === undefined
        ? { kind: 'member', object, name: e.name }
        : { kind: 'member', object, name: e.name, args: e.args.map((a) => canonExpr(a, scope)) };
    }
    case 'num':
    case 'str':
    case 'bool':
    case 'ip':
    case 'prefix':
    case 'pathmask':
    case 'wildcard':
    case 'empty':
      return e;
  }
}

// conf/confbase.Y: %left AND OR; %nonassoc = < > ~ ...; %left + -; %left * / %; %left !
function precedence(e: Expr): number {
  if (e.kind === 'not') return 5;
  if (e.kind !== 'binary') return 6;
  switch (e.op) {
    case '&&':
    case '||':
      return 1;
    case '+':
    case '-':
      return 3;
    case '*':
    case '/':
    case '%':
      return 4;
    default:
      return 2;
  }
}

/** Operands of a chain of one associative operator, however it was parenthesized. */
function chain(e: Expr, op: BinaryOp, out: Expr[]): Expr[] {
  if (e.kind === 'binary' && e.op === op) {
    chain(e.left, op, out);
    chain(e.right, op, out);
  } else {
    out.push(e);
  }
  return out;
}

/** Canonical text with only the parentheses BIRD's precedence needs. */
export function renderExpr(e: Expr): string {
  const wrap = (x: Expr, need: boolean): string => (need ? `(${renderExpr(x)})` : renderExpr(x));
  switch (e.kind) {
    case 'num':
      return String(e.value);
    case 'str':
      return `"${e.value}"`;
    case 'bool':
      return e.value ? 'true' : 'false';
    case 'ip':
      return e.value;
    case 'prefix': {
      if (e.min === undefined || e.max === undefined) return e.value;
      const bits = e.value.includes(':') ? 128 : 32;
      if (e.min === e.len && e.max === e.len) return e.value;
      if (e.min === e.len && e.max === bits) return `${e.value}+`;
      if (e.min === 0 && e.max === e.len) return `${e.value}-`;
      return `${e.value}{${e.min},${e.max}}`;
    }
    case 'name':
      return symbolText(e.name);
    case 'set': {
      // A set's meaning does not depend on the order or repetition of its items.
      const items = [...new Set(e.items.map(renderExpr))].sort();
      return `[ ${items.join(', ')} ]`;
    }
    case 'tuple':
      return `(${e.items.map(renderExpr).join(', ')})`;
    case 'pathmask':
      return `[= ${e.items.join(' ')} =]`;
    case 'range':
      return `${renderExpr(e.from)}..${renderExpr(e.to)}`;
    case 'wildcard':
      return '*';
    case 'empty':
      return e.text;
    case 'not':
      return `!${wrap(e.arg, precedence(e.arg) < 5)}`;
    case 'call':
      return `${symbolText(e.name)}(${e.args.map(renderExpr).join(', ')})`;
    case 'member': {
      const obj = wrap(e.object, precedence(e.object) < 6);
      return e.args === undefined
        ? `${obj}.${e.name}`
        : `${obj}.${e.name}(${e.args.map(renderExpr).join(', ')})`;
    }
    case 'binary': {
      const p = precedence(e);
      if (e.op === '&&' || e.op === '||') {
        // Both are associative; `&&` inside `||` (or the reverse) is always parenthesized,
        // since BIRD gives them one precedence level and a C reader would misread it.
        return chain(e, e.op, [])
          .map((x) => wrap(x, precedence(x) <= 1))
          .join(` ${e.op} `);
      }
      if (p === 2)
        return `${wrap(e.left, precedence(e.left) <= 2)} ${e.op} ${wrap(e.right, precedence(e.right) <= 2)}`;
      return `${wrap(e.left, precedence(e.left) < p)} ${e.op} ${wrap(e.right, precedence(e.right) <= p)}`;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Statements

// `x.add(y);` is compiled as `x = add(x, y);` (filter/config.Y f_generate_complex), so both
// spellings normalize to the method form.
const LIST_METHODS = new Set(['add', 'delete', 'filter', 'prepend']);

function canonStmts(stmts: readonly Stmt[], scope: Scope): BirdStmt[] {
  const out: BirdStmt[] = [];
  for (const s of stmts) {
    switch (s.kind) {
      case 'block':
        out.push(...canonStmts(s.body, scope));
        break;
      case 'if': {
        const cond = renderExpr(canonExpr(s.cond, scope));
        const then = canonStmts(s.then, scope);
        const els = s.else === undefined ? [] : canonStmts(s.else, scope);
        out.push(els.length === 0 ? { if: cond, then } : { if: cond, then, else: els });
        break;
      }
      case 'action': {
        const args = s.args.map((a) => renderExpr(canonExpr(a, scope)));
        out.push(args.length === 0 ? `${s.action};` : `${s.action} ${args.join(', ')};`);
        break;
      }
      case 'return':
        out.push(`return ${renderExpr(canonExpr(s.value, scope))};`);
        break;
      case 'assign': {
        const target = renderExpr(canonExpr(s.target, scope));
        const value = canonExpr(s.value, scope);
        const first = value.kind === 'call' ? value.args[0] : undefined;
        if (
          value.kind === 'call' &&
          value.args.length === 2 &&
          LIST_METHODS.has(value.name) &&
          first !== undefined &&
          renderExpr(first) === target
        ) {
          out.push(`${target}.${value.name}(${renderExpr(value.args[1] as Expr)});`);
        } else {
          out.push(`${target} = ${renderExpr(value)};`);
        }
        break;
      }
      case 'expr':
        out.push(`${renderExpr(canonExpr(s.expr, scope))};`);
        break;
      case 'case':
        out.push({
          case: renderExpr(canonExpr(s.subject, scope)),
          arms: s.arms.map((a) => ({
            labels:
              a.labels.length === 0
                ? 'else'
                : [...a.labels.map((l) => renderExpr(canonExpr(l, scope)))].sort().join(', '),
            body: canonStmts(a.body, scope),
          })),
        });
        break;
      case 'unset':
        out.push(`unset(${renderExpr(canonExpr(s.target, scope))});`);
        break;
      case 'decl':
        out.push(
          s.value === undefined
            ? `${s.type} ${symbolText(s.name)};`
            : `${s.type} ${symbolText(s.name)} = ${renderExpr(canonExpr(s.value, scope))};`,
        );
        break;
    }
  }
  return out;
}

/** One line of text for a statement, for messages. */
export function renderStmt(s: BirdStmt): string {
  if (typeof s === 'string') return s;
  const body = (b: readonly BirdStmt[]): string =>
    `{ ${b.map(renderStmt).join(' ')}${b.length > 0 ? ' ' : ''}}`;
  if ('if' in s) {
    const head = `if ${s.if} then ${body(s.then)}`;
    return s.else === undefined ? head : `${head} else ${body(s.else)}`;
  }
  return `case ${s.case} { ${s.arms.map((a) => `${a.labels}: ${a.body.map(renderStmt).join(' ')}`).join(' ')} }`;
}

// ---------------------------------------------------------------------------------------------
// Option phrases

const BOOL_ON = new Set(['on', 'yes', 'true']);
const BOOL_OFF = new Set(['off', 'no', 'false']);

function wordOf(a: Atom | undefined): string | undefined {
  return a?.kind === 'token' && a.token.kind === 'word' && !a.token.quoted ? a.token.text : undefined;
}

function locOf(a: Atom): SourceLoc {
  return a.kind === 'token' ? a.token.loc : a.loc;
}

function atomText(a: Atom, defines: Defines): string {
  switch (a.kind) {
    case 'token': {
      const t = a.token;
      switch (t.kind) {
        case 'word': {
          const d = defines.get(t.text);
          return d === undefined ? symbolText(t.text) : renderExpr(d);
        }
        case 'num':
          return String(t.text.startsWith('0x') ? parseInt(t.text.slice(2), 16) : Number(t.text));
        case 'str':
          return `"${t.text}"`;
        default:
          return t.text;
      }
    }
    case 'ip':
    case 'prefix':
      return a.value;
    case 'list':
      return `{ ${a.items.map((i) => atomsText(i, defines)).join(', ')} }`;
    case 'where':
      return `where ${renderExpr(a.cond)}`;
    case 'block':
    case 'filter':
      throw new BirdParseError(a.loc, 'a block is not a value here');
  }
}

function atomsText(atoms: readonly Atom[], defines: Defines): string {
  return atoms
    .map((a) => atomText(a, defines))
    .join(' ')
    .replace(/ ,/g, ',');
}

/** BIRD's `bool` (conf/confbase.Y): empty means on; `extra` lists other words the option takes. */
function switchValue(rest: readonly Atom[], defines: Defines, extra: readonly string[] = []): string {
  if (rest.length === 0) return 'on';
  if (rest.length === 1) {
    const w = wordOf(rest[0]);
    if (w !== undefined && BOOL_ON.has(w)) return 'on';
    if (w !== undefined && BOOL_OFF.has(w)) return 'off';
    if (w !== undefined && extra.includes(w)) return w;
    const text = atomText(rest[0] as Atom, defines);
    if (/^\d+$/.test(text)) return text === '0' ? 'off' : 'on';
  }
  throw new BirdParseError(
    locOf(rest[0] as Atom),
    `expected on or off${extra.map((x) => ` or ${x}`).join('')}`,
  );
}

type Kind = 'switch' | 'value' | 'text';
interface Spec {
  readonly kind: Kind;
  /** Words besides on/off the switch takes (`graceful restart aware`). */
  readonly extra?: readonly string[];
  /** Stored under another key (deprecated aliases). */
  readonly key?: string;
}

const COMMON_SPECS: Readonly<Record<string, Spec>> = {
  disabled: { kind: 'switch' },
  description: { kind: 'text' },
  'router id': { kind: 'value' },
  table: { kind: 'value' },
  preference: { kind: 'value' },
  'import keep filtered': { kind: 'switch' },
  'import limit': { kind: 'value' },
  'export limit': { kind: 'value' },
  'receive limit': { kind: 'value' },
  vrf: { kind: 'value' },
  mrtdump: { kind: 'value' },
};

// proto/bgp/config.Y (projectcalico/bird), bgp_proto rules.
const BGP_SPECS: Readonly<Record<string, Spec>> = {
  'hold time': { kind: 'value' },
  'startup hold time': { kind: 'value' },
  'keepalive time': { kind: 'value' },
  'connect delay time': { kind: 'value' },
  'start delay time': { kind: 'value', key: 'connect delay time' },
  'connect retry time': { kind: 'value' },
  'error forget time': { kind: 'value' },
  'error wait time': { kind: 'value' },
  'disable after error': { kind: 'switch' },
  'disable after cease': { kind: 'value' },
  'enable route refresh': { kind: 'switch' },
  'enable as4': { kind: 'switch' },
  'enable extended messages': { kind: 'switch' },
  capabilities: { kind: 'switch' },
  'advertise ipv4': { kind: 'switch' },
  'interpret communities': { kind: 'switch' },
  'default bgp_local_pref': { kind: 'value' },
  'default bgp_med': { kind: 'value' },
  'path metric': { kind: 'switch' },
  'med metric': { kind: 'switch' },
  'igp metric': { kind: 'switch' },
  'prefer older': { kind: 'switch' },
  'deterministic med': { kind: 'switch' },
  'source address': { kind: 'value' },
  passive: { kind: 'switch' },
  'ttl security': { kind: 'switch' },
  'check link': { kind: 'switch' },
  bfd: { kind: 'switch', extra: ['graceful'] },
  secondary: { kind: 'switch' },
  'allow bgp_local_pref': { kind: 'switch' },
  setkey: { kind: 'switch' },
  gateway: { kind: 'value' },
  'igp table': { kind: 'value' },
  'rr cluster id': { kind: 'value' },
  'missing lladdr': { kind: 'value' },
  'long lived stale time': { kind: 'value' },
  'long lived graceful restart': { kind: 'switch', extra: ['aware'] },
  'graceful restart time': { kind: 'value' },
  'graceful restart': { kind: 'switch', extra: ['aware'] },
  'add paths': { kind: 'switch', extra: ['rx', 'tx'] },
  interface: { kind: 'text' },
  password: { kind: 'text' },
  // BIRD 2 channel options, for unfolded `ipv4 { }` blocks.
  'next hop address': { kind: 'value' },
  'extended next hop': { kind: 'switch' },
  mandatory: { kind: 'switch' },
  'import table': { kind: 'switch' },
  'export table': { kind: 'switch' },
};

// sysdep/unix/krt.Y and sysdep/linux/netlink.Y.
const KERNEL_SPECS: Readonly<Record<string, Spec>> = {
  persist: { kind: 'switch' },
  'scan time': { kind: 'value' },
  learn: { kind: 'switch', extra: ['all'] },
  'device routes': { kind: 'switch' },
  'graceful restart': { kind: 'switch' },
  'kernel table': { kind: 'value' },
  metric: { kind: 'value' },
};

const SPECS: Readonly<Record<string, Readonly<Record<string, Spec>>>> = {
  bgp: BGP_SPECS,
  kernel: KERNEL_SPECS,
  device: { 'scan time': { kind: 'value' } },
  direct: { 'check link': { kind: 'switch' } },
  static: { 'check link': { kind: 'switch' }, 'igp table': { kind: 'value' } },
};

/**
 * BIRD's defaults: an option equal to its default is dropped from the model, so writing it
 * and leaving it out compare equal. `*` applies to every protocol type. Sources are in
 * projectcalico/bird; the user guide (doc/bird.sgml) says the same under each option.
 */
const DEFAULTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  '*': {
    // nest/proto.c proto_config_new(): in_filter NULL (= accept), out_filter FILTER_REJECT.
    import: 'all',
    export: 'none',
    disabled: 'off',
    'import keep filtered': 'off',
    'import limit': 'off',
    'export limit': 'off',
    'receive limit': 'off',
    table: 'master',
  },
  // proto/bgp/config.Y bgp_proto_start; doc: "passive ... Default: off", "ttl security
  // ... Default: disabled", "add paths ... Default: off", "graceful restart ... Default: aware".
  bgp: {
    preference: '100', // nest/route.h DEF_PREF_BGP
    'neighbor port': '179', // BGP_CFG->remote_port = BGP_PORT
    'hold time': '240',
    'startup hold time': '240',
    'connect delay time': '5',
    'connect retry time': '120',
    'error forget time': '300',
    'error wait time': '60, 300',
    'disable after error': 'off',
    'enable route refresh': 'on',
    'enable as4': 'on',
    'enable extended messages': 'off',
    'advertise ipv4': 'on',
    'interpret communities': 'on',
    'default bgp_local_pref': '100',
    'default bgp_med': '0',
    'path metric': 'on',
    'med metric': 'off',
    'igp metric': 'on',
    'prefer older': 'off',
    'deterministic med': 'off',
    passive: 'off',
    'ttl security': 'off',
    'check link': 'off',
    bfd: 'off',
    secondary: 'off',
    'allow bgp_local_pref': 'off',
    'allow local as': '0', // doc: "Default: 0 (no local AS number allowed)"
    setkey: 'on',
    'rr client': 'off',
    'rs client': 'off',
    'graceful restart': 'aware', // gr_mode = BGP_GR_AWARE
    'graceful restart time': '120',
    'long lived stale time': '3600',
    'add paths': 'off',
  },
  // sysdep/unix/krt.c krt_init_config(): scan_time 60; sysdep/linux/netlink.c
  // krt_sys_init_config(): table RT_TABLE_MAIN, metric 0; the rest zeroed.
  kernel: {
    preference: '10', // DEF_PREF_INHERITED
    persist: 'off',
    'scan time': '60',
    learn: 'off',
    'device routes': 'off',
    'graceful restart': 'off',
    'merge paths': 'off',
    'kernel table': '254',
    metric: '0',
  },
  device: { 'scan time': '60' }, // kif_init_config()
  direct: { preference: '240', 'check link': 'off' }, // DEF_PREF_DIRECT
  static: { preference: '200', 'check link': 'off' }, // DEF_PREF_STATIC
  ospf: { preference: '150' },
  rip: { preference: '120' },
  babel: { preference: '130' },
  pipe: { preference: '70' },
};

// nest/config.Y debug_flag.
const DEBUG_FLAGS = new Set(['states', 'routes', 'filters', 'interfaces', 'events', 'packets']);

function debugValue(rest: readonly Atom[], defines: Defines, at: SourceLoc): string {
  const only = rest.length === 1 ? rest[0] : undefined;
  const w = wordOf(only);
  if (w === 'all' || w === 'off') return w;
  if (only?.kind === 'list') {
    const flags = only.items.map((i) => atomsText(i, defines));
    const bad = flags.find((f) => !DEBUG_FLAGS.has(f));
    if (bad !== undefined) throw new BirdParseError(at, `unknown debug flag ${bad}`);
    // The flags form a bit mask: order and repetition do not matter.
    return flags.length === 0 ? 'off' : `{ ${[...new Set(flags)].sort().join(', ')} }`;
  }
  throw new BirdParseError(at, 'expected debug all, off or { flags }');
}

type Action =
  | { readonly op: 'set'; readonly key: string; readonly value: BirdValue }
  | { readonly op: 'append'; readonly key: string; readonly value: string }
  | { readonly op: 'route'; readonly prefix: string; readonly dest: string };

function leadingWords(phrase: readonly Atom[]): string[] {
  const words: string[] = [];
  for (const a of phrase) {
    const w = wordOf(a);
    if (w === undefined) break;
    words.push(w);
  }
  return words;
}

function fail(a: Atom | undefined, at: SourceLoc, what: string): never {
  throw new BirdParseError(a === undefined ? at : locOf(a), what);
}

/** An inline filter whose whole body is `accept;` is `all`; `reject;` alone is `none`. */
function inlineFilter(body: readonly BirdStmt[]): BirdValue {
  if (body.length === 1 && body[0] === 'accept;') return 'all';
  if (body.length === 1 && body[0] === 'reject;') return 'none';
  return { filter: body };
}

/** `import all`, `export filter NAME`, `export filter { ... }`, `import where EXPR`. */
function filterValue(rest: readonly Atom[], scope: Scope, at: SourceLoc): BirdValue | undefined {
  const first = rest[0];
  const w = wordOf(first);
  if (rest.length === 1 && (w === 'all' || w === 'none')) return w;
  if (first?.kind === 'where' && rest.length === 1) {
    // filter/config.Y where_filter: 'IF term THEN ACCEPT; REJECT;'
    return { filter: [{ if: renderExpr(canonExpr(first.cond, scope)), then: ['accept;'] }, 'reject;'] };
  }
  if (w === 'filter' && rest.length === 2 && rest[1]?.kind === 'token' && rest[1].token.kind === 'word') {
    return `filter ${symbolText(rest[1].token.text)}`;
  }
  if (w === 'filter' && rest[1]?.kind === 'filter' && rest.length === 2)
    return inlineFilter(canonStmts(rest[1].body, scope));
  if (w === 'all' || w === 'none' || w === 'filter') fail(rest[1], at, 'unexpected text after the filter');
  return undefined;
}

/** What one option does to a protocol's settings. */
function interpret(type: string, item: OptionItem, scope: Scope): Action[] {
  const { phrase, loc } = item;
  const words = leadingWords(phrase);
  const d = scope.defines;
  const head = words[0];
  const after = (n: number): readonly Atom[] => phrase.slice(n);

  if (head === 'import' || head === 'export') {
    const v = filterValue(after(1), scope, loc);
    if (v !== undefined) return [{ op: 'set', key: head, value: v }];
  }
  if (head === 'debug') return [{ op: 'set', key: 'debug', value: debugValue(after(1), d, loc) }];

  if (type === 'bgp') {
    if (head === 'neighbor' || head === 'local') return endpoint(head, after(1), d, loc);
    if (head === 'multihop') {
      const rest = after(1);
      if (rest.length > 1) fail(rest[1], loc, 'expected multihop [hops]');
      return [{ op: 'set', key: 'multihop', value: rest.length === 0 ? '64' : atomText(rest[0] as Atom, d) }];
    }
    if (head === 'direct' && phrase.length === 1) return [{ op: 'set', key: 'multihop', value: 'direct' }];
    if (head === 'next' && words[1] === 'hop' && (words[2] === 'self' || words[2] === 'keep')) {
      // config.Y: NEXT HOP SELF clears next_hop_keep and the reverse: one setting, last wins.
      return [{ op: 'set', key: 'next hop', value: atomsText(after(2), d) }];
    }
    if (head === 'allow' && words[1] === 'local' && words[2] === 'as') {
      const rest = after(3);
      // ALLOW LOCAL AS ';' sets allow_local_as = -1: no limit.
      return [
        { op: 'set', key: 'allow local as', value: rest.length === 0 ? 'unlimited' : atomsText(rest, d) },
      ];
    }
    if ((head === 'rr' || head === 'rs') && words[1] === 'client' && phrase.length === 2) {
      return [{ op: 'set', key: `${head} client`, value: 'on' }];
    }
  }
  if (type === 'kernel' && head === 'merge' && words[1] === 'paths') {
    const rest = after(2);
    const on = switchValue(rest.slice(0, 1), d);
    let limit = '16'; // krt.h KRT_DEFAULT_ECMP_LIMIT
    if (rest.length > 1) {
      if (wordOf(rest[1]) !== 'limit' || rest.length !== 3)
        fail(rest[1], loc, 'expected merge paths on [limit N]');
      limit = atomText(rest[2] as Atom, d);
    }
    return [{ op: 'set', key: 'merge paths', value: on === 'on' ? `on limit ${limit}` : 'off' }];
  }
  if ((type === 'direct' || type === 'device') && (head === 'interface' || head === 'primary')) {
    return [{ op: 'append', key: head, value: interfacePatterns(after(1), d) }];
  }
  if (type === 'static' && head === 'route') return [staticRoute(after(1), d, loc)];

  // The longest known option name that the phrase starts with.
  const specs = { ...COMMON_SPECS, ...own(SPECS, type) };
  for (let n = words.length; n > 0; n--) {
    const name = words.slice(0, n).join(' ');
    const spec = own(specs, name);
    if (spec === undefined) continue;
    const rest = after(n);
    const key = spec.key ?? name;
    switch (spec.kind) {
      case 'switch':
        return [{ op: 'set', key, value: switchValue(rest, d, spec.extra) }];
      case 'text':
        if (rest.length !== 1 || rest[0]?.kind !== 'token' || rest[0].token.kind !== 'str') {
          fail(rest[0], loc, `expected a string after ${name}`);
        }
        return [{ op: 'set', key, value: atomText(rest[0], d) }];
      case 'value':
        if (rest.length === 0) fail(undefined, loc, `expected a value after ${name}`);
        return [{ op: 'set', key, value: atomsText(rest, d) }];
    }
  }

  // Unknown option: its leading words name it; a trailing on/off is its switch.
  const last = words[words.length - 1];
  const lastIsSwitch =
    words.length === phrase.length &&
    words.length > 1 &&
    last !== undefined &&
    (BOOL_ON.has(last) || BOOL_OFF.has(last));
  const n = lastIsSwitch ? words.length - 1 : words.length;
  if (n === 0) fail(phrase[0], loc, 'expected an option name');
  const rest = after(n);
  const value = lastIsSwitch || rest.length === 0 ? switchValue(rest, d) : atomsText(rest, d);
  return [{ op: 'set', key: words.slice(0, n).join(' '), value }];
}

/** `neighbor 10.0.0.1 port 179 as 65000` and `local 10.0.0.2 as 65000` (config.Y bgp_nbr_opts). */
function endpoint(head: 'neighbor' | 'local', rest: readonly Atom[], d: Defines, at: SourceLoc): Action[] {
  const out: Action[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as Atom;
    const w = wordOf(a);
    if (a.kind === 'ip') {
      out.push({ op: 'set', key: head === 'neighbor' ? 'neighbor' : 'source address', value: a.value });
      // ipa_scope: `fe80::1%eth0` names the interface.
      if (rest[i + 1]?.kind === 'token' && atomText(rest[i + 1] as Atom, d) === '%') {
        const iface = rest[i + 2];
        if (iface === undefined) fail(undefined, at, 'expected an interface after %');
        out.push({ op: 'set', key: 'interface', value: `"${wordOf(iface) ?? atomText(iface, d)}"` });
        i += 2;
      }
      continue;
    }
    if ((w === 'port' || w === 'as' || w === 'range') && rest[i + 1] !== undefined) {
      out.push({ op: 'set', key: `${head} ${w}`, value: atomText(rest[i + 1] as Atom, d) });
      i++;
      continue;
    }
    if (w !== undefined) {
      out.push({ op: 'set', key: `${head} ${w}`, value: 'on' });
      continue;
    }
    fail(a, at, `unexpected ${atomText(a, d)} in ${head}`);
  }
  return out;
}

/** `-"cali*", "eth0" 10.0.0.0/8, "*"`: one interface statement's patterns, in order. */
function interfacePatterns(rest: readonly Atom[], d: Defines): string {
  return atomsText(rest, d).replace(/- "/g, '-"');
}

// proto/static/config.Y stat_route: DROP and BLACKHOLE, REJECT and UNREACHABLE are the same.
const ROUTE_DEST_ALIASES: Readonly<Record<string, string>> = { drop: 'blackhole', reject: 'unreachable' };

function staticRoute(rest: readonly Atom[], d: Defines, at: SourceLoc): Action {
  const p = rest[0];
  if (p?.kind !== 'prefix') fail(p, at, 'expected a prefix after route');
  const tail = rest.slice(1);
  const w = tail.length === 1 ? wordOf(tail[0]) : undefined;
  const dest = w !== undefined ? (own(ROUTE_DEST_ALIASES, w) ?? w) : atomsText(tail, d);
  if (dest === '') fail(undefined, at, `expected a destination for route ${p.value}`);
  return { op: 'route', prefix: p.value, dest };
}

// ---------------------------------------------------------------------------------------------
// Protocols

interface ProtoState {
  readonly options: Map<string, BirdValue>;
  readonly routes: Map<string, string>;
}

const FOLDABLE_CHANNELS = new Set(['ipv4', 'ipv6']);

function applyItems(
  st: ProtoState,
  type: string,
  items: readonly OptionItem[],
  scope: Scope,
  prefix: string,
  fold: boolean,
): void {
  let folded: string | undefined;
  for (const item of items) {
    const last = item.phrase[item.phrase.length - 1];
    if (last?.kind === 'block') {
      const head = item.phrase.slice(0, -1);
      const name = atomsText(head, scope.defines);
      if (fold && prefix === '' && FOLDABLE_CHANNELS.has(name)) {
        if (folded !== undefined && folded !== name) {
          throw new BirdParseError(
            item.loc,
            `cannot fold channel ${name}: this protocol already has ${folded}`,
          );
        }
        folded = name;
        applyItems(st, type, last.items, scope, '', false);
      } else {
        applyItems(st, type, last.items, scope, `${prefix}${name}.`, false);
      }
      continue;
    }
    for (const act of interpret(type, item, scope)) {
      switch (act.op) {
        case 'set':
          st.options.set(prefix + act.key, act.value);
          break;
        case 'append': {
          const prev = st.options.get(prefix + act.key);
          st.options.set(prefix + act.key, typeof prev === 'string' ? `${prev}; ${act.value}` : act.value);
          break;
        }
        case 'route': {
          const prev = st.routes.get(act.prefix);
          // Two routes for one prefix: keep both, in a stable order.
          st.routes.set(act.prefix, prev === undefined ? act.dest : [prev, act.dest].sort().join(' | '));
          break;
        }
      }
    }
  }
}

/** Defaults that depend on other options (proto/bgp/bgp.c bgp_check_config()). */
function computedDefaults(type: string, o: ReadonlyMap<string, BirdValue>): Record<string, string> {
  if (type !== 'bgp') return {};
  const out: Record<string, string> = {};
  const localAs = o.get('local as');
  const peerAs = o.get('neighbor as');
  // "EBGP direct by default, IBGP multihop by default": multihop = internal ? 64 : 0.
  if (localAs !== undefined && peerAs !== undefined) out['multihop'] = localAs === peerAs ? '64' : 'direct';
  // "Different default for gw_mode": multihop ? GW_RECURSIVE : GW_DIRECT.
  const multihop = o.get('multihop') ?? out['multihop'];
  if (multihop !== undefined) out['gateway'] = multihop === 'direct' ? 'direct' : 'recursive';
  // doc: missing lladdr "Default: self, unless BIRD is configured as a route server".
  out['missing lladdr'] = o.get('rs client') === 'on' ? 'ignore' : 'self';
  return out;
}

function sortedRecord<V>(m: ReadonlyMap<string, V>): Record<string, V> {
  // fromEntries defines own properties, so even a symbol named __proto__ stays data.
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------------
// Whole config

/** The meaning model of a parsed config. */
export function normalizeBird(config: BirdConfig, options: NormalizeOptions = {}): BirdModel {
  const fold = options.foldChannels === true;
  const defines = new Map<string, Expr>();
  const globalScope = (): Scope => ({ defines, locals: new Set() });
  const globals = new Map<string, string>();
  const functions = new Map<string, BirdFunction>();
  const filters = new Map<string, { readonly body: readonly BirdStmt[] }>();
  const protocols = new Map<string, BirdProtocol>();
  // Protocols and templates by name, as option state before defaults are dropped: `from`
  // may name either (nest/config.Y proto_name).
  const sources = new Map<string, { readonly type: string; readonly state: ProtoState }>();
  const symbols = new Map<string, SourceLoc>();
  const counters = new Map<string, number>();
  const pending: { readonly type: string; readonly name: string; readonly state: ProtoState }[] = [];

  const defineSymbol = (name: string, loc: SourceLoc): void => {
    const prev = symbols.get(name);
    if (prev !== undefined) {
      throw new BirdParseError(
        loc,
        `${symbolText(name)} already defined at ${prev.file}:${prev.line}:${prev.column}`,
      );
    }
    symbols.set(name, loc);
  };

  const topItem = (item: TopItem): void => {
    switch (item.kind) {
      case 'define':
        defineSymbol(item.name, item.loc);
        defines.set(item.name, canonExpr(item.value, globalScope()));
        return;
      case 'function': {
        defineSymbol(item.name, item.loc);
        const locals = new Set(item.params.map((p) => p.name));
        for (const s of item.body) if (s.kind === 'decl') locals.add(s.name);
        const body = canonStmts(item.body, { defines, locals });
        const params = item.params.map((p) => `${p.type} ${symbolText(p.name)}`);
        functions.set(
          item.name,
          item.returnType === undefined ? { params, body } : { params, returnType: item.returnType, body },
        );
        return;
      }
      case 'filter': {
        defineSymbol(item.name, item.loc);
        const locals = new Set<string>();
        for (const s of item.body) if (s.kind === 'decl') locals.add(s.name);
        filters.set(item.name, { body: canonStmts(item.body, { defines, locals }) });
        return;
      }
      case 'protocol': {
        let name = item.name;
        if (name === undefined) {
          // conf/cf-lex.l cf_default_name(): "<type>%d", skipping names already taken.
          let n = counters.get(item.type) ?? 0;
          do n++;
          while (symbols.has(`${item.type}${n}`));
          counters.set(item.type, n);
          name = `${item.type}${n}`;
        }
        defineSymbol(name, item.loc);
        const state: ProtoState = { options: new Map(), routes: new Map() };
        if (item.from !== undefined) {
          const src = sources.get(item.from);
          if (src === undefined)
            throw new BirdParseError(item.loc, `template or protocol ${symbolText(item.from)} not defined`);
          if (src.type !== item.type) {
            throw new BirdParseError(
              item.loc,
              `${symbolText(item.from)} is a ${src.type} template, not ${item.type}`,
            );
          }
          for (const [k, v] of src.state.options) state.options.set(k, v);
          for (const [k, v] of src.state.routes) state.routes.set(k, v);
        }
        applyItems(state, item.type, item.items, globalScope(), '', fold);
        sources.set(name, { type: item.type, state });
        if (!item.template) pending.push({ type: item.type, name, state });
        return;
      }
      case 'statement':
        globalStatement(item.phrase, item.loc);
        return;
    }
  };

  const globalStatement = (phrase: readonly Atom[], loc: SourceLoc): void => {
    const words = leadingWords(phrase);
    const rest = phrase.slice(words.length);
    if (words[0] === 'router' && words[1] === 'id' && words.length === 2) {
      globals.set('router id', atomsText(rest, defines));
      return;
    }
    if (words[0] === 'listen' && words[1] === 'bgp') {
      // sysdep/unix/config.Y: LISTEN BGP [ADDRESS ipa] [PORT expr] [V6ONLY|DUAL]
      const tail = phrase.slice(2);
      for (let i = 0; i < tail.length; i++) {
        const w = wordOf(tail[i]);
        if ((w === 'address' || w === 'port') && tail[i + 1] !== undefined) {
          const v = atomText(tail[i + 1] as Atom, defines);
          if (!(w === 'port' && v === '179')) globals.set(`listen bgp ${w}`, v);
          i++;
        } else if (w === 'v6only' || w === 'dual') {
          globals.set('listen bgp mode', w);
        } else {
          fail(tail[i], loc, 'expected address, port, v6only or dual');
        }
      }
      return;
    }
    if (words[0] === 'debug' && words[1] === 'protocols') {
      globals.set('debug protocols', debugValue(phrase.slice(2), defines, loc));
      return;
    }
    if (words.length === 0) fail(phrase[0], loc, 'expected a statement');
    const key = words.join(' ');
    const value = rest.length === 0 ? 'on' : atomsText(rest, defines);
    const prev = globals.get(key);
    globals.set(key, prev === undefined ? value : `${prev}; ${value}`);
  };

  for (const item of config.items) topItem(item);

  const debugDefault = globals.get('debug protocols') ?? 'off'; // proto_default_debug
  if (globals.get('debug protocols') === 'off') globals.delete('debug protocols');
  for (const { type, name, state } of pending) {
    const o = state.options;
    const defaults: Record<string, string> = {
      ...DEFAULTS['*'],
      ...own(DEFAULTS, type),
      debug: debugDefault,
      ...computedDefaults(type, o),
    };
    const kept = new Map<string, BirdValue>();
    for (const [k, v] of o) if (own(defaults, k) !== v) kept.set(k, v);
    protocols.set(`${type} ${name}`, {
      type,
      name,
      options: sortedRecord(kept),
      routes: sortedRecord(state.routes),
    });
  }

  return {
    globals: sortedRecord(globals),
    functions: sortedRecord(functions),
    filters: sortedRecord(filters),
    protocols: sortedRecord(protocols),
  };
}
