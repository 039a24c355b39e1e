// Reading docs/ and the sources from the docs tests (packages/node/test/docs-*.test.ts).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from packages/node/dist/test/support). */
export const REPO = fileURLToPath(new URL('../../../../../', import.meta.url));

export function readDoc(path: string): string {
  return readFileSync(join(REPO, 'docs', path), 'utf8');
}

/** Every file under `dir` (relative to the repository) whose name matches `re`, repository-relative. */
export function filesUnder(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      if (n === 'node_modules' || n === 'dist') continue;
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (re.test(n)) out.push(relative(REPO, p));
    }
  };
  walk(join(REPO, dir));
  return out.sort();
}

/** One fenced code block of a Markdown file. */
export interface Fence {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly body: string;
  /** The nearest non-blank line before the fence (for `<!-- invalid: ... -->` markers). */
  readonly before: string;
}

export function fences(file: string, text: string): Fence[] {
  const lines = text.split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+)\s*([\w+-]*)/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trimStart().startsWith(open[2]!); j++)
      body.push(lines[j]!.slice(Math.min(indent, lines[j]!.length - lines[j]!.trimStart().length)));
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    out.push({
      file,
      line: i + 1,
      lang: open[3]!,
      body: body.join('\n'),
      before: k >= 0 ? lines[k]!.trim() : '',
    });
    i = j;
  }
  return out;
}

/** The backquoted names in the first column of a Markdown table's rows. */
export function firstColumnNames(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) => /^\|\s*`([^`]+)`/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}
