// The selector AST: one discriminated union, the shapes libcalico-go's parser builds
// (lib/selector/parser/ast.go), so a selector means here what it means to Calico.

declare const brand: unique symbol;
/** A nominal type: `Brand<string, 'LabelKey'>` is a string only `labelKey()` (or the parser) makes. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/**
 * A label key as Calico's tokenizer reads one: 1..512 of `[A-Za-z0-9_./-]`. Calico does not
 * hold keys to Kubernetes' stricter form (`prefix/name`), so neither do we: `a/b/c` is a key.
 */
export type LabelKey = Brand<string, 'LabelKey'>;

/** libcalico-go tokenizer.MaxLabelLength. */
export const MAX_LABEL_KEY_LENGTH = 512;

const KEY_CHAR = /^[A-Za-z0-9_./-]$/;

export function isLabelKeyChar(c: string): boolean {
  return KEY_CHAR.test(c);
}

export function isValidLabelKey(s: string): s is LabelKey {
  return s.length >= 1 && s.length <= MAX_LABEL_KEY_LENGTH && /^[A-Za-z0-9_./-]+$/.test(s);
}

export function labelKey(s: string): LabelKey {
  if (!isValidLabelKey(s)) {
    throw new RangeError(`not a selector label key (1..512 of [A-Za-z0-9_./-]): ${JSON.stringify(s)}`);
  }
  return s;
}

/** `all()`, and the empty selector: matches everything. */
export interface AllSelector {
  readonly kind: 'all';
}
/**
 * `global()`: matches every label set. Its meaning in a policy's namespaceSelector
 * (non-namespaced endpoints only) belongs to the policy layer, not to matching labels.
 */
export interface GlobalSelector {
  readonly kind: 'global';
}
/** `has(key)`: the label is present, with any value. */
export interface HasSelector {
  readonly kind: 'has';
  readonly key: LabelKey;
}
/** The comparisons of one label with one string; all but `ne` need the label present. */
export type ValueOperator = 'eq' | 'ne' | 'contains' | 'startsWith' | 'endsWith';
export interface ValueSelector {
  readonly kind: ValueOperator;
  readonly key: LabelKey;
  readonly value: string;
}
/**
 * `key in {...}` / `key not in {...}`. `values` is sorted by code point (Go's byte order
 * for UTF-8) with duplicates removed, as Calico's StringSet keeps it; the parser makes it so.
 */
export interface SetSelector {
  readonly kind: 'in' | 'notIn';
  readonly key: LabelKey;
  readonly values: readonly string[];
}
/** `!operand`. The parser folds runs of `!` by parity, as Calico does: `!!x` is `x`. */
export interface NotSelector {
  readonly kind: 'not';
  readonly operand: Selector;
}
/** `a && b && ...` / `a || b || ...`: at least two operands (one would just be the operand). */
export interface BooleanSelector {
  readonly kind: 'and' | 'or';
  readonly operands: readonly [Selector, Selector, ...Selector[]];
}

export type Selector =
  AllSelector | GlobalSelector | HasSelector | ValueSelector | SetSelector | NotSelector | BooleanSelector;

/** Code-point order, which is Go's `<` on the UTF-8 bytes (JS `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done === true) return y.done === true ? 0 : -1;
    if (y.done === true) return 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** Values as a SetSelector holds them: sorted by code point, each once. */
export function toStringSet(values: Iterable<string>): readonly string[] {
  const sorted = [...values].sort(compareCodePoints);
  return sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
}
