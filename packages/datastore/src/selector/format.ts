// Canonical selector text: byte for byte what libcalico-go's Selector.String() gives,
// so a selector's identity (Calico hashes this text for its UID) is the same here.

import type { Selector } from './ast.js';
import { toStringSet } from './ast.js';

const OPERATOR_TEXT = {
  eq: ' == ',
  ne: ' != ',
  contains: ' contains ',
  startsWith: ' starts with ',
  endsWith: ' ends with ',
} as const;

/**
 * A string literal: double quotes unless the value holds one. Selector strings have no
 * escapes, so a value with both kinds of quote has no text; the parser never makes one.
 */
function quote(value: string): string {
  if (!value.includes('"')) return `"${value}"`;
  if (!value.includes("'")) return `'${value}'`;
  throw new RangeError(`a selector string cannot hold both ' and ": ${JSON.stringify(value)}`);
}

/**
 * The canonical text of a selector (Calico's Selector.String()): `&&` / `||` groups always
 * in parentheses, one space around operators, sets sorted and de-duplicated, `all()` for
 * the empty selector. parseSelector(formatSelector(s)) equals s for every tree the parser
 * builds; a `not` directly inside a `not` comes back folded away, as Calico folds `!!`.
 *
 * @throws RangeError for a value holding both quote characters (no selector text has one).
 */
export function formatSelector(sel: Selector): string {
  switch (sel.kind) {
    case 'all':
    case 'global':
      return `${sel.kind}()`;
    case 'has':
      return `has(${sel.key})`;
    case 'eq':
    case 'ne':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      return `${sel.key}${OPERATOR_TEXT[sel.kind]}${quote(sel.value)}`;
    case 'in':
    case 'notIn':
      return `${sel.key} ${sel.kind === 'in' ? 'in' : 'not in'} {${toStringSet(sel.values).map(quote).join(', ')}}`;
    case 'not':
      return `!${formatSelector(sel.operand)}`;
    case 'and':
    case 'or':
      return `(${sel.operands.map(formatSelector).join(sel.kind === 'and' ? ' && ' : ' || ')})`;
  }
}
