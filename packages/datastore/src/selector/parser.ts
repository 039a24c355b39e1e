// The selector parser: libcalico-go's parser.go (recursive descent over the tokens;
// `||` lowest, then `&&`, then a run of `!` before one operation) with errors that say
// where, what was expected and what was found.

import type { LabelKey, Selector, ValueOperator } from './ast.js';
import { toStringSet } from './ast.js';
import { SelectorSyntaxError } from './errors.js';
import type { Lexeme } from './tokenizer.js';
import { Lexer, describe } from './tokenizer.js';

/**
 * Parenthesis nesting allowed. Calico has no limit (Go stacks grow); ours keeps a hostile
 * selector from overflowing the JS stack, which would throw something other than
 * SelectorSyntaxError.
 */
export const MAX_SELECTOR_DEPTH = 500;

const VALUE_OPERATORS: Partial<Record<Lexeme['kind'], ValueOperator>> = {
  eq: 'eq',
  ne: 'ne',
  contains: 'contains',
  startsWith: 'startsWith',
  endsWith: 'endsWith',
};

const OPERATION = "a label key, has(), all(), global(), '!' or '('";
const OPERATOR = "an operator ('==', '!=', 'in', 'not in', 'contains', 'starts with', 'ends with')";

class Parser {
  private readonly lexer: Lexer;
  private tok: Lexeme;
  private depth = 0;

  constructor(private readonly input: string) {
    this.lexer = new Lexer(input);
    this.tok = this.lexer.next();
  }

  /** The current token's kind (a call, so TypeScript does not narrow it across advance()). */
  private kind(): Lexeme['kind'] {
    return this.tok.kind;
  }

  private advance(): Lexeme {
    const t = this.tok;
    this.tok = this.lexer.next();
    return t;
  }

  private fail(expected: string, note?: string): never {
    const at = this.tok;
    const found = describe(this.input, at.offset, at.end);
    throw note === undefined
      ? new SelectorSyntaxError(this.input, at.offset, expected, found)
      : new SelectorSyntaxError(this.input, at.offset, expected, found, note);
  }

  parseRoot(): Selector {
    // The empty (or all-blank) selector is all(), as in Calico.
    if (this.kind() === 'eof') return { kind: 'all' };
    const sel = this.parseOr();
    if (this.kind() !== 'eof') this.fail("'&&', '||' or end of input");
    return sel;
  }

  private parseOr(): Selector {
    const operands = [this.parseAnd()];
    while (this.kind() === 'or') {
      this.advance();
      operands.push(this.parseAnd());
    }
    return join('or', operands);
  }

  private parseAnd(): Selector {
    const operands = [this.parseOperation()];
    while (this.kind() === 'and') {
      this.advance();
      operands.push(this.parseOperation());
    }
    return join('and', operands);
  }

  /** A possibly negated operation; `!`s fold by parity as in Calico (`!!x` is `x`). */
  private parseOperation(): Selector {
    let negated = false;
    while (this.kind() === 'not') {
      negated = !negated;
      this.advance();
    }
    const sel = this.parsePrimary();
    return negated ? { kind: 'not', operand: sel } : sel;
  }

  private parsePrimary(): Selector {
    const t = this.tok;
    switch (t.kind) {
      case 'all':
      case 'global':
        this.advance();
        return { kind: t.kind };
      case 'has':
        this.advance();
        return { kind: 'has', key: t.value as LabelKey };
      case 'label':
        this.advance();
        return this.parseComparison(t.value as LabelKey);
      case 'lparen': {
        if (this.depth >= MAX_SELECTOR_DEPTH) this.fail(`at most ${MAX_SELECTOR_DEPTH} nested '('`);
        this.advance();
        this.depth++;
        const sel = this.parseOr();
        this.depth--;
        if (this.kind() !== 'rparen')
          this.fail("'&&', '||' or ')'", `to close the '(' at offset ${t.offset}`);
        this.advance();
        return sel;
      }
      default:
        return this.fail(OPERATION);
    }
  }

  private parseComparison(key: LabelKey): Selector {
    const op = this.tok;
    const valueOp = VALUE_OPERATORS[op.kind];
    if (valueOp !== undefined) {
      this.advance();
      return { kind: valueOp, key, value: this.expectString() };
    }
    if (op.kind !== 'in' && op.kind !== 'notIn') return this.fail(OPERATOR);
    this.advance();
    if (this.kind() !== 'lbrace') this.fail("'{' to start a set of quoted strings");
    this.advance();
    const values: string[] = [];
    // Calico's loop: strings separated by commas, a trailing comma allowed after one.
    for (let s = this.tok; s.kind === 'string'; s = this.tok) {
      this.advance();
      values.push(s.value);
      if (this.kind() !== 'comma') {
        if (this.kind() !== 'rbrace') this.fail("',' or '}'");
        break;
      }
      this.advance();
    }
    if (this.kind() !== 'rbrace') this.fail("a quoted string or '}'");
    this.advance();
    return { kind: op.kind, key, values: toStringSet(values) };
  }

  private expectString(): string {
    const s = this.tok;
    if (s.kind !== 'string') return this.fail('a quoted string');
    this.advance();
    return s.value;
  }
}

function join(kind: 'and' | 'or', operands: Selector[]): Selector {
  const [first, second, ...rest] = operands;
  if (second === undefined) return first!;
  return { kind, operands: [first!, second, ...rest] };
}

/**
 * Parses a Calico v3 label selector. Accepts exactly what libcalico-go's parser.Parse
 * accepts (up to MAX_SELECTOR_DEPTH nested parentheses) and builds the same tree.
 *
 * @throws SelectorSyntaxError for anything else; never any other exception.
 */
export function parseSelector(text: string): Selector {
  return new Parser(text).parseRoot();
}
