// YAML text for the JSON-plain objects the backend writes, without the `yaml` library's
// document model: a CNI ADD writes three files (handle, block, endpoint) while the pod waits,
// and building and printing a Document took about 0.9 ms a file, most of a write.
//
// The output is the library's for what resources hold (block style, two-space indent,
// sequences indented under their key, `[]` and `{}` when empty, each string as the library
// writes it alone), and always parses back to the same value; what it does not write itself
// (a sequence directly in a sequence, a number that is not an integer, a string that could
// take more than one line) it hands, with the whole object, to the library.
import { Document } from 'yaml';

/** Something this emitter leaves to the library. */
class Unusual extends Error {}

/** The library folds scalars past its line width (80); longer strings go to it with the object. */
const MAX_SCALAR = 60;
const scalars = new Map<string, string | null>();

/**
 * A string as the library writes it (plain where it reads back as itself, quoted otherwise),
 * or null when that takes more than one line. Resources repeat their strings (keys, kinds,
 * names), so each is asked of the library once.
 */
function stringScalar(s: string): string | null {
  let t = scalars.get(s);
  if (t === undefined) {
    const text = s.length > MAX_SCALAR ? '' : new Document(s).toString();
    t = text.endsWith('\n') && text.indexOf('\n') === text.length - 1 ? text.slice(0, -1) : null;
    if (scalars.size >= 8192) scalars.clear();
    scalars.set(s, t);
  }
  return t;
}

function scalar(v: unknown): string {
  switch (typeof v) {
    case 'string': {
      const t = stringScalar(v);
      if (t === null) throw new Unusual();
      return t;
    }
    case 'number':
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) throw new Unusual();
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      if (v === null) return 'null';
      throw new Unusual();
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `key: value` lines at `ind`; members whose value is undefined are left out, as the library does. */
function mapping(o: Record<string, unknown>, ind: string, out: string[]): void {
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined) continue;
    const key = scalar(k);
    if (Array.isArray(v)) {
      if (v.length === 0) out.push(`${ind}${key}: []`);
      else {
        out.push(`${ind}${key}:`);
        sequence(v, `${ind}  `, out);
      }
    } else if (isMapping(v)) {
      if (Object.values(v).every((x) => x === undefined)) out.push(`${ind}${key}: {}`);
      else {
        out.push(`${ind}${key}:`);
        mapping(v, `${ind}  `, out);
      }
    } else out.push(`${ind}${key}: ${scalar(v)}`);
  }
}

/** `- item` lines at `ind`; a mapping item starts on the dash's line. */
function sequence(a: readonly unknown[], ind: string, out: string[]): void {
  for (const v of a) {
    if (Array.isArray(v)) {
      if (v.length > 0) throw new Unusual();
      out.push(`${ind}- []`);
    } else if (isMapping(v)) {
      const at = out.length;
      mapping(v, `${ind}  `, out);
      if (out.length === at) out.push(`${ind}- {}`);
      else out[at] = `${ind}- ${out[at]!.slice(ind.length + 2)}`;
    } else out.push(`${ind}- ${scalar(v === undefined ? null : v)}`);
  }
}

/** The YAML document for a JSON-plain mapping (keys in its own order), ending in a newline. */
export function emitYaml(o: Record<string, unknown>): string {
  try {
    const out: string[] = [];
    mapping(o, '', out);
    if (out.length === 0) return '{}\n';
    out.push('');
    return out.join('\n');
  } catch (e) {
    if (!(e instanceof Unusual)) throw e;
    return new Document(o).toString();
  }
}
