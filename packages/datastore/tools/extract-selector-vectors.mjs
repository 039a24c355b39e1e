#!/usr/bin/env node
// Regenerates test/vectors/calico-selector.json from libcalico-go's own selector tests.
// Usage: node tools/extract-selector-vectors.mjs <calico git dir> <commit>
// It reads the Go composite literals (selectorTests, badSelectors, canonicalisationTests,
// tokenTests) with a small literal reader; anything it does not understand stops it.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [gitDir, commit] = process.argv.slice(2);
if (gitDir === undefined || commit === undefined) {
  console.error('usage: extract-selector-vectors.mjs <calico git dir> <commit>');
  process.exit(2);
}
const show = (path) =>
  execFileSync('git', ['--git-dir', gitDir, 'show', `${commit}:${path}`], { encoding: 'utf8' });
const PARSER_TEST = 'libcalico-go/lib/selector/parser/parser_test.go';
const TOKENIZER_TEST = 'libcalico-go/lib/selector/tokenizer/tokenizer_test.go';

/** The Go literal after `var <name> = <type>`, as JSON-ish values. */
function literal(src, name) {
  const at = src.indexOf(`var ${name} = `);
  if (at < 0) throw new Error(`no var ${name}`);
  // `[]struct {...}{` declares its element type inline: the literal starts after it.
  const struct = src.startsWith('[]struct', at + `var ${name} = `.length);
  let i = struct ? src.indexOf('}{', at) + 1 : src.indexOf('{', at);
  const skip = () => {
    for (;;) {
      while (/\s/.test(src[i])) i++;
      if (src.startsWith('//', i)) i = src.indexOf('\n', i);
      else return;
    }
  };
  const str = () => {
    const q = src[i];
    if (q === '`') {
      const end = src.indexOf('`', i + 1);
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    let j = i + 1;
    while (src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
    const s = JSON.parse(src.slice(i, j + 1));
    i = j + 1;
    return s;
  };
  const value = () => {
    skip();
    // Type names before composite literals carry nothing we need.
    const type = /^(\[\][\w.]+(\[[\w.]+\][\w.]+)?|map\[string\]string|[\w.]+)(?=\{)/.exec(src.slice(i));
    if (type !== null) i += type[0].length;
    if (src[i] === '{') return composite();
    if (src[i] === '"' || src[i] === '`') return str();
    const repeat = /^strings\.Repeat\("(\w)", (\d+)\)(?: \+ `([^`]*)`)?/.exec(src.slice(i));
    if (repeat !== null) {
      i += repeat[0].length;
      return repeat[1].repeat(Number(repeat[2])) + (repeat[3] ?? '');
    }
    const word = /^[\w.]+/.exec(src.slice(i));
    if (word !== null) {
      i += word[0].length;
      return word[0] === 'nil' ? null : { ident: word[0] };
    }
    throw new Error(`cannot read Go at ${JSON.stringify(src.slice(i, i + 40))}`);
  };
  const composite = () => {
    i++; // {
    const items = [];
    let keyed = false;
    for (;;) {
      skip();
      if (src[i] === '}') {
        i++;
        break;
      }
      const v = value();
      skip();
      if (src[i] === ':') {
        i++;
        keyed = true;
        items.push([typeof v === 'string' ? v : v.ident, value()]);
      } else items.push(v);
      skip();
      if (src[i] === ',') i++;
    }
    return keyed ? Object.fromEntries(items) : items;
  };
  return composite();
}

const parserSrc = show(PARSER_TEST);
const tokenizerSrc = show(TOKENIZER_TEST);
const TOKEN_KIND = (k) => k.replace(/^tokenizer\.Tok/, '');

const out = {
  source: { repository: 'https://github.com/projectcalico/calico', commit, license: 'Apache-2.0' },
  match: literal(parserSrc, 'selectorTests').map(([selector, matching, nonMatching]) => ({
    selector,
    // An empty Go map literal reads as an empty list.
    matching: matching.map((m) => (Array.isArray(m) ? {} : m)),
    nonMatching: nonMatching.map((m) => (Array.isArray(m) ? {} : m)),
  })),
  invalid: literal(parserSrc, 'badSelectors'),
  canonical: literal(parserSrc, 'canonicalisationTests').map(([input, expected, uid]) => ({
    input,
    expected,
    uid,
  })),
  tokens: literal(tokenizerSrc, 'tokenTests').map(([input, expected]) => ({
    input,
    tokens:
      expected === null
        ? null
        : expected.map((t) =>
            t.Value === undefined ? [TOKEN_KIND(t.Kind.ident)] : [TOKEN_KIND(t.Kind.ident), t.Value],
          ),
  })),
};
out.source.files = [PARSER_TEST, TOKENIZER_TEST];
writeFileSync(
  new URL('../test/vectors/calico-selector.json', import.meta.url),
  JSON.stringify(out, null, 1) + '\n',
);
console.log(
  `match ${out.match.length}, invalid ${out.invalid.length}, canonical ${out.canonical.length}, tokens ${out.tokens.length}`,
);
