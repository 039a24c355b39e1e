// parseSelector / matches / formatSelector: error positions and messages, the AST shape,
// matching details, and fast-check properties (format then parse is the identity on parser
// trees; no input makes parseSelector throw anything but SelectorSyntaxError).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { LabelKey, Selector } from '../src/selector/index.js';
import {
  MAX_SELECTOR_DEPTH,
  SelectorSyntaxError,
  formatSelector,
  labelKey,
  matches,
  parseSelector,
  toStringSet,
} from '../src/selector/index.js';

function syntaxError(text: string): SelectorSyntaxError {
  try {
    parseSelector(text);
  } catch (e) {
    if (e instanceof SelectorSyntaxError) return e;
    throw e;
  }
  assert.fail(`${JSON.stringify(text)} parsed`);
}

const k = (s: string): LabelKey => labelKey(s);

describe('parseSelector', () => {
  it('builds the tree with && above ! and || above &&', () => {
    assert.deepEqual(parseSelector(`!a == 'x' && has(b) || c in {"z", 'y', "z"}`), {
      kind: 'or',
      operands: [
        {
          kind: 'and',
          operands: [
            { kind: 'not', operand: { kind: 'eq', key: k('a'), value: 'x' } },
            { kind: 'has', key: k('b') },
          ],
        },
        { kind: 'in', key: k('c'), values: ['y', 'z'] },
      ],
    });
  });

  it('reads the empty and blank selector as all(), and !! by parity as Calico does', () => {
    assert.deepEqual(parseSelector(''), { kind: 'all' });
    assert.deepEqual(parseSelector(' \t '), { kind: 'all' });
    assert.deepEqual(parseSelector('!!has(a)'), { kind: 'has', key: k('a') });
    assert.deepEqual(parseSelector('! !!has(a)'), { kind: 'not', operand: { kind: 'has', key: k('a') } });
  });

  it('reads prefixed keys, keyword-named keys and every operator', () => {
    assert.deepEqual(parseSelector('example.com/app-name_1 starts with "web"'), {
      kind: 'startsWith',
      key: k('example.com/app-name_1'),
      value: 'web',
    });
    assert.deepEqual(parseSelector('in in {}'), { kind: 'in', key: k('in'), values: [] });
    assert.deepEqual(parseSelector('has contains "x"'), { kind: 'contains', key: k('has'), value: 'x' });
    assert.deepEqual(parseSelector('a endswith "x"'), { kind: 'endsWith', key: k('a'), value: 'x' });
    assert.deepEqual(parseSelector('a notin {"x",}'), { kind: 'notIn', key: k('a'), values: ['x'] });
    assert.deepEqual(parseSelector('global()'), { kind: 'global' });
  });

  it('says where, what it expected and what it found', () => {
    const e = syntaxError('app == "web" && == "x"');
    assert.equal(e.offset, 16);
    assert.equal(e.found, "'=='");
    assert.equal(
      e.message,
      `expected a label key, has(), all(), global(), '!' or '(' at offset 16, found '=='`,
    );
    assert.equal(syntaxError('a b').message.startsWith(`expected an operator ('==', '!='`), true);
    assert.equal(syntaxError('a ==').message, 'expected a quoted string at offset 4, found end of input');
    assert.equal(
      syntaxError('(a == "b"').message,
      `expected '&&', '||' or ')' at offset 9, found end of input (to close the '(' at offset 0)`,
    );
    assert.equal(
      syntaxError(`a == "b`).message,
      'expected a closing " at offset 7, found end of input (for the string at offset 5)',
    );
    assert.equal(syntaxError('a = "b"').message, `expected '==' at offset 2, found '= '`);
    assert.equal(
      syntaxError('a in "b"').message,
      `expected '{' to start a set of quoted strings at offset 5, found "\\"b\\""`,
    );
    assert.equal(syntaxError('a in {"b" "c"}').message, `expected ',' or '}' at offset 10, found "\\"c\\""`);
    assert.equal(
      syntaxError('has(a) has(b)').message,
      `expected '&&', '||' or end of input at offset 7, found 'has(b)'`,
    );
    assert.equal(syntaxError('a == "b"\n').offset, 8, 'newline is not whitespace to Calico');
    assert.equal(syntaxError(`${'a'.repeat(513)} == "b"`).found, 'one of 513 characters');
  });

  it('limits nesting with a SelectorSyntaxError, not a stack overflow', () => {
    const ok = `${'('.repeat(MAX_SELECTOR_DEPTH)}all()${')'.repeat(MAX_SELECTOR_DEPTH)}`;
    assert.deepEqual(parseSelector(ok), { kind: 'all' });
    assert.equal(syntaxError(`(${ok})`).offset, MAX_SELECTOR_DEPTH);
    assert.throws(() => parseSelector('('.repeat(100_000)), SelectorSyntaxError);
  });
});

describe('matches', () => {
  it('treats a missing label as Calico does', () => {
    const none = {};
    assert.equal(matches(parseSelector('a != "x"'), none), true);
    assert.equal(matches(parseSelector('a not in {"x"}'), none), true);
    for (const s of [
      'a == ""',
      'a in {""}',
      'a contains ""',
      'a starts with ""',
      'a ends with ""',
      'has(a)',
    ]) {
      assert.equal(matches(parseSelector(s), none), false, s);
      assert.equal(matches(parseSelector(s), { a: '' }), true, s);
    }
  });

  it('looks at own labels only', () => {
    assert.equal(matches(parseSelector('has(constructor)'), {}), false);
    assert.equal(
      matches(parseSelector('has(__proto__)'), JSON.parse('{"__proto__":"x"}') as Record<string, string>),
      true,
    );
  });
});

describe('formatSelector', () => {
  it("writes Calico's canonical text", () => {
    assert.equal(
      formatSelector(parseSelector(`a==''||b  in{'y','x'}&&!c!='"'`)),
      `(a == "" || (b in {"x", "y"} && !c != '"'))`,
    );
  });

  it('refuses a value no selector text can hold', () => {
    assert.throws(() => formatSelector({ kind: 'eq', key: k('a'), value: `'"` }), RangeError);
  });
});

// Trees as the parser builds them: and/or of two or more, no `not` straight inside a
// `not`, sets sorted and unique, values without both quote kinds.
const keyArb = fc.stringMatching(/^[A-Za-z0-9_./-]{1,20}$/).map((s) => labelKey(s));
const valueArb = fc
  .oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'a', 'in', '"', "'", ' ', 'é', '😀'))
  .filter((v) => !(v.includes('"') && v.includes("'")));
const { tree } = fc.letrec<{ tree: Selector; positive: Selector }>((tie) => ({
  positive: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<Selector>({ kind: 'all' }, { kind: 'global' }),
    keyArb.map((key): Selector => ({ kind: 'has', key })),
    fc
      .record({
        kind: fc.constantFrom('eq', 'ne', 'contains', 'startsWith', 'endsWith' as const),
        key: keyArb,
        value: valueArb,
      })
      .map((s): Selector => ({ ...s })), // fc.record objects have no prototype
    fc
      .record({
        kind: fc.constantFrom('in', 'notIn' as const),
        key: keyArb,
        values: fc.array(valueArb, { maxLength: 4 }),
      })
      .map((s): Selector => ({ ...s, values: toStringSet(s.values) })),
    fc
      .record({
        kind: fc.constantFrom('and', 'or' as const),
        operands: fc.array(tie('tree'), { minLength: 2, maxLength: 4 }),
      })
      .map((s): Selector => ({
        kind: s.kind,
        operands: [s.operands[0]!, s.operands[1]!, ...s.operands.slice(2)],
      })),
  ),
  tree: fc.oneof(
    tie('positive'),
    tie('positive').map((operand): Selector => ({ kind: 'not', operand })),
  ),
}));

describe('selector properties', () => {
  it('parse(format(tree)) is the tree, and format is a fixed point', () => {
    fc.assert(
      fc.property(tree, (sel) => {
        const text = formatSelector(sel);
        assert.deepEqual(parseSelector(text), sel);
        assert.equal(formatSelector(parseSelector(text)), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('the canonical text matches the same label sets', () => {
    const labels = fc.dictionary(
      fc.constantFrom('a', 'b', 'in', 'x/y'),
      fc.constantFrom('', 'a', 'in', '"', 'ab'),
    );
    fc.assert(
      fc.property(
        tree,
        labels,
        (sel, l) => matches(parseSelector(formatSelector(sel)), l) === matches(sel, l),
      ),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but SelectorSyntaxError on any string', () => {
    const grammarish = fc
      .array(
        fc.constantFrom(
          'a',
          'has(',
          'all(',
          'global(',
          ')',
          '(',
          '{',
          '}',
          ',',
          '"x"',
          "'",
          '"',
          '==',
          '!=',
          '!',
          '&&',
          '||',
          '&',
          '|',
          '=',
          ' ',
          'in',
          'not',
          'in ',
          'starts',
          'with',
          'contains',
          '\n',
          '%',
        ),
        { maxLength: 24 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), grammarish), (text) => {
        try {
          const sel = parseSelector(text);
          // Whatever parses has canonical text that parses to the same tree.
          assert.deepEqual(parseSelector(formatSelector(sel)), sel);
        } catch (e) {
          if (!(e instanceof SelectorSyntaxError)) throw e;
          assert.ok(e.offset >= 0 && e.offset <= text.length);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
