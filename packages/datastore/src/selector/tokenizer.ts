// The selector tokenizer: libcalico-go's tokenizer.go, token for token, plus offsets.
//
// It is lazy (the parser pulls one token at a time) so the first error by position is
// the one reported; Calico tokenizes everything first, but both accept the same inputs:
// an input parses only if every token up to the end was read. Words after a label are
// operators (`in`, `not in`, `contains`, `starts with`, `ends with`) and anywhere else
// are labels, exactly as Calico decides by the previous token.

import { MAX_LABEL_KEY_LENGTH, isLabelKeyChar } from './ast.js';
import { SelectorSyntaxError } from './errors.js';

export type TokenKind =
  | 'label'
  | 'string'
  | 'lbrace'
  | 'rbrace'
  | 'comma'
  | 'eq'
  | 'ne'
  | 'in'
  | 'not'
  | 'notIn'
  | 'contains'
  | 'startsWith'
  | 'endsWith'
  | 'all'
  | 'has'
  | 'lparen'
  | 'rparen'
  | 'and'
  | 'or'
  | 'global'
  | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** The label key (label, has) or the string's contents (string); '' otherwise. */
  readonly value: string;
  /** Where the token starts and ends in the input (UTF-16 offsets). */
  readonly offset: number;
  readonly end: number;
}

/**
 * What the lexer yields: a token, or text no token can start with. The parser turns the
 * latter into an error naming what it expected there, which only it knows.
 */
export type Lexeme = Token | { readonly kind: 'invalid'; readonly offset: number; readonly end: number };

const PUNCT: Readonly<Record<string, TokenKind>> = {
  '(': 'lparen',
  ')': 'rparen',
  '{': 'lbrace',
  '}': 'rbrace',
  ',': 'comma',
};

/** Calico counts only space and tab as whitespace (not newlines). */
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

/** How an error message shows the text at [offset, end): quoted, shortened, or end of input. */
export function describe(input: string, offset: number, end: number): string {
  if (offset >= input.length) return 'end of input';
  const text = input.slice(offset, Math.max(end, offset + 1));
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return JSON.stringify(shown).slice(1, -1).length === shown.length && !shown.includes("'")
    ? `'${shown}'`
    : JSON.stringify(shown);
}

export class Lexer {
  private pos = 0;
  private last: Lexeme['kind'] | 'none' = 'none';

  constructor(readonly input: string) {}

  next(): Lexeme {
    const lexeme = this.scan();
    this.last = lexeme.kind;
    return lexeme;
  }

  private fail(offset: number, expected: string, found: string, note?: string): never {
    throw note === undefined
      ? new SelectorSyntaxError(this.input, offset, expected, found)
      : new SelectorSyntaxError(this.input, offset, expected, found, note);
  }

  private skipSpace(): void {
    while (isSpace(this.input[this.pos])) this.pos++;
  }

  private token(kind: TokenKind, offset: number, value = ''): Token {
    return { kind, value, offset, end: this.pos };
  }

  /** The run of label-key characters at pos (possibly empty), not consumed. */
  private wordEnd(from: number): number {
    let i = from;
    while (i < this.input.length && isLabelKeyChar(this.input[i]!)) i++;
    return i;
  }

  /** One character (a whole code point) at offset, for "found" in errors. */
  private charEnd(offset: number): number {
    const cp = this.input.codePointAt(offset);
    return offset + (cp !== undefined && cp > 0xffff ? 2 : 1);
  }

  private scan(): Lexeme {
    this.skipSpace();
    const input = this.input;
    const start = this.pos;
    if (start >= input.length) return this.token('eof', start);
    const c = input[start]!;
    const punct = PUNCT[c];
    if (punct !== undefined) {
      this.pos++;
      return this.token(punct, start);
    }
    switch (c) {
      case '"':
      case "'": {
        // No escapes: a string runs to the next quote of its kind (Calico's rule).
        const close = input.indexOf(c, start + 1);
        if (close < 0) {
          this.fail(input.length, `a closing ${c}`, 'end of input', `for the string at offset ${start}`);
        }
        this.pos = close + 1;
        return this.token('string', start, input.slice(start + 1, close));
      }
      case '=':
        return this.pair('==', 'eq', start);
      case '&':
        return this.pair('&&', 'and', start);
      case '|':
        return this.pair('||', 'or', start);
      case '!':
        if (input.startsWith('!=', start)) {
          this.pos += 2;
          return this.token('ne', start);
        }
        this.pos++;
        return this.token('not', start);
    }
    if (this.last === 'label') return this.operator(start);
    if (input.startsWith('has(', start)) {
      this.pos += 4;
      this.skipSpace();
      const key = this.labelKey();
      this.skipSpace();
      if (input[this.pos] !== ')') {
        this.fail(
          this.pos,
          "')'",
          describe(input, this.pos, this.charEnd(this.pos)),
          `to close the has( at offset ${start}`,
        );
      }
      this.pos++;
      return this.token('has', start, key);
    }
    for (const [text, kind] of [
      ['all(', 'all'],
      ['global(', 'global'],
    ] as const) {
      if (input.startsWith(text, start)) {
        this.pos += text.length;
        this.skipSpace();
        if (input[this.pos] !== ')') {
          this.fail(
            this.pos,
            "')'",
            describe(input, this.pos, this.charEnd(this.pos)),
            `to close the ${text} at offset ${start}`,
          );
        }
        this.pos++;
        return this.token(kind, start);
      }
    }
    if (!isLabelKeyChar(c)) return { kind: 'invalid', offset: start, end: this.charEnd(start) };
    return this.token('label', start, this.labelKey());
  }

  private pair(text: string, kind: TokenKind, start: number): Token {
    if (!this.input.startsWith(text, start)) {
      this.fail(start, `'${text}'`, describe(this.input, start, Math.min(this.input.length, start + 2)));
    }
    this.pos += 2;
    return this.token(kind, start);
  }

  /** A label key at pos: 1..512 key characters. */
  private labelKey(): string {
    const start = this.pos;
    const end = this.wordEnd(start);
    if (end === start) this.fail(start, 'a label key', describe(this.input, start, this.charEnd(start)));
    if (end - start > MAX_LABEL_KEY_LENGTH) {
      this.fail(
        start,
        `a label key of at most ${MAX_LABEL_KEY_LENGTH} characters`,
        `one of ${end - start} characters`,
      );
    }
    this.pos = end;
    return this.input.slice(start, end);
  }

  /** After a label: a word operator, or an invalid lexeme for the parser to report. */
  private operator(start: number): Lexeme {
    for (const [words, kind] of [
      [['contains'], 'contains'],
      [['starts', 'with'], 'startsWith'],
      [['ends', 'with'], 'endsWith'],
      [['not', 'in'], 'notIn'],
      [['in'], 'in'],
    ] as const) {
      const end = this.words(start, words);
      if (end >= 0) {
        this.pos = end;
        return this.token(kind, start);
      }
    }
    const end = this.wordEnd(start);
    return { kind: 'invalid', offset: start, end: end > start ? end : this.charEnd(start) };
  }

  /**
   * The end of `words` at `from`, each word followed by optional whitespace; -1 if not there.
   * Calico's two rules for the word boundary: a one-word operator needs it straight after
   * the word (`in"x"`, `in x`), a two-word one after the whitespace that follows (so
   * `notin{` and `startswith'x'` count, and `not in x` does not tokenize).
   */
  private words(from: number, words: readonly string[]): number {
    let i = from;
    let afterWord = from;
    for (const w of words) {
      if (!this.input.startsWith(w, i)) return -1;
      i += w.length;
      afterWord = i;
      while (isSpace(this.input[i])) i++;
    }
    const next = this.input[words.length === 1 ? afterWord : i];
    if (next !== undefined && isLabelKeyChar(next)) return -1;
    return i;
  }
}

/**
 * The tokens of a selector, ending with `eof`, as Calico's tokenizer.Tokenize yields them.
 * Throws SelectorSyntaxError where that tokenizer returns an error.
 */
export function tokenizeSelector(input: string): Token[] {
  const lexer = new Lexer(input);
  const out: Token[] = [];
  for (;;) {
    const t = lexer.next();
    if (t.kind === 'invalid') {
      const expected = out.at(-1)?.kind === 'label' ? 'an operator' : 'a selector token';
      throw new SelectorSyntaxError(input, t.offset, expected, describe(input, t.offset, t.end));
    }
    out.push(t);
    if (t.kind === 'eof') return out;
  }
}
