// One resource per file, as an operator would write it: <plural>/<name>.yaml, or
// <plural>/<namespace>/<name>.yaml for namespaced kinds. A file the datastore wrote ends
// with a stamp line, `# tabby-sha256: <digest of everything above>`. A file whose stamp is
// missing or does not match was written or edited by hand: the backend adopts it (new
// resourceVersion, journal entry, fresh stamp) before anyone may compare-and-swap on it.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import type { Kind } from '../../resources/kinds.js';
import { KIND_INFO, isKind } from '../../resources/kinds.js';
import type { ResourceKey } from '../../resources/meta.js';
import type { AnyResource } from '../../store/backend.js';
import { emitYaml } from './emit.js';

export const STAMP = '# tabby-sha256: ';
export const SUFFIX = '.yaml';

/** Where one object lives, relative to the root (`rel`) and absolute (`abs`). */
export interface Location {
  readonly key: ResourceKey<Kind>;
  readonly rel: string;
  readonly abs: string;
}

/**
 * Why a name cannot be a file name here, or undefined when it can. Names become path
 * segments, so nothing that walks out of the directory, hides as a dotfile or cannot fit.
 */
export function badSegment(s: string): string | undefined {
  if (s === '') return 'is empty';
  if (s.startsWith('.')) return 'starts with a dot';
  if (s.includes('/') || s.includes('\0')) return 'contains "/" or NUL';
  if (Buffer.byteLength(s) > 250) return 'is longer than 250 bytes';
  return undefined;
}

/** The file of a key, or why there can be none. */
export function locate(root: string, key: ResourceKey<Kind>): Location | { problem: string; path: string } {
  const info = KIND_INFO[key.kind];
  const nameBad = badSegment(key.name);
  if (nameBad !== undefined)
    return { problem: `name ${JSON.stringify(key.name)} ${nameBad}`, path: 'metadata.name' };
  let rel: string;
  if (info.namespaced) {
    if (key.namespace === undefined)
      return { problem: `${key.kind} is namespaced`, path: 'metadata.namespace' };
    const nsBad = badSegment(key.namespace);
    if (nsBad !== undefined)
      return { problem: `namespace ${JSON.stringify(key.namespace)} ${nsBad}`, path: 'metadata.namespace' };
    rel = `${info.plural}/${key.namespace}/${key.name}${SUFFIX}`;
  } else {
    if (key.namespace !== undefined)
      return { problem: `${key.kind} is not namespaced`, path: 'metadata.namespace' };
    rel = `${info.plural}/${key.name}${SUFFIX}`;
  }
  return { key, rel, abs: join(root, rel) };
}

/** The key a relative path names, or why it names none (wrong depth, not .yaml). */
export function keyOfPath(rel: string): ResourceKey<Kind> | undefined {
  const parts = rel.split('/');
  const plural = parts[0];
  const kind = KINDS_BY_PLURAL.get(plural ?? '');
  const file = parts[parts.length - 1] ?? '';
  if (kind === undefined || !file.endsWith(SUFFIX) || file.startsWith('.')) return undefined;
  const name = file.slice(0, -SUFFIX.length);
  if (KIND_INFO[kind].namespaced) {
    return parts.length === 3 ? { kind, namespace: parts[1]!, name } : undefined;
  }
  return parts.length === 2 ? { kind, name } : undefined;
}

const KINDS_BY_PLURAL = new Map<string, Kind>(
  Object.entries(KIND_INFO).map(([kind, info]) => [info.plural, kind as Kind]),
);

export function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** apiVersion, kind, metadata (name first, bookkeeping last), spec: the order people expect. */
function ordered(o: AnyResource): Record<string, unknown> {
  const { apiVersion, kind, metadata, spec, ...rest } = o;
  const { name, namespace, labels, annotations, resourceVersion, uid, creationTimestamp, ...mrest } =
    metadata;
  return {
    apiVersion,
    kind,
    metadata: { name, namespace, labels, annotations, ...mrest, resourceVersion, uid, creationTimestamp },
    spec,
    ...rest,
  };
}

export function stamp(body: string): string {
  return `${body}${STAMP}${digest(body)}\n`;
}

/** The whole file for an object the datastore writes. */
export function render(o: AnyResource): string {
  return stamp(emitYaml(ordered(o)));
}

/** What a file holds, as far as the backend cares. */
export type Parsed =
  | {
      readonly ok: true;
      readonly object: AnyResource;
      /** The stamp matches: the datastore wrote exactly this, with this resourceVersion. */
      readonly stamped: boolean;
    }
  | { readonly ok: false; readonly problem: string };

/** The text above a trailing stamp line (all of it when there is none). */
export function body(text: string): { body: string; stamp: string | undefined } {
  const at = text.lastIndexOf(`\n${STAMP}`);
  if (at < 0 && !text.startsWith(STAMP)) return { body: text, stamp: undefined };
  const start = at < 0 ? 0 : at + 1;
  const line = text.slice(start + STAMP.length).replace(/\n$/, '');
  if (line.includes('\n')) return { body: text, stamp: undefined };
  return { body: text.slice(0, start), stamp: line };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a resource file and checks it against its place: kind and name (and namespace)
 * must be the path's. Specs are not checked (the layer above validates).
 */
export function parseFile(text: string, key: ResourceKey<Kind>): Parsed {
  const doc = parseDocument(text);
  const err = doc.errors[0];
  if (err !== undefined) return { ok: false, problem: `not valid YAML: ${err.message.split('\n')[0]}` };
  const v: unknown = doc.toJS();
  if (!isRecord(v)) return { ok: false, problem: v == null ? 'empty file' : 'not a YAML mapping' };
  const expectDir = KIND_INFO[key.kind].plural;
  if (typeof v['kind'] !== 'string' || v['kind'] === '') return { ok: false, problem: 'no kind' };
  if (v['kind'] !== key.kind)
    return {
      ok: false,
      problem: isKind(v['kind'])
        ? `kind ${v['kind']} does not belong in ${expectDir}/ (that is ${key.kind})`
        : `unknown kind ${v['kind']} (this directory holds ${key.kind})`,
    };
  const meta = v['metadata'];
  if (!isRecord(meta) || typeof meta['name'] !== 'string' || meta['name'] === '')
    return { ok: false, problem: 'no metadata.name' };
  if (meta['name'] !== key.name)
    return {
      ok: false,
      problem: `metadata.name ${meta['name']} does not match the file name ${key.name}${SUFFIX}`,
    };
  const ns = meta['namespace'];
  if (key.namespace !== undefined && ns !== key.namespace)
    return {
      ok: false,
      problem:
        typeof ns === 'string'
          ? `metadata.namespace ${ns} does not match the directory ${key.namespace}/`
          : 'no metadata.namespace',
    };
  if (key.namespace === undefined && ns !== undefined)
    return { ok: false, problem: `${key.kind} is not namespaced, but the file has metadata.namespace` };
  const { stamp: mark, body: b } = body(text);
  const stamped =
    mark !== undefined &&
    mark === digest(b) &&
    typeof meta['resourceVersion'] === 'string' &&
    typeof v['apiVersion'] === 'string';
  return { ok: true, object: v as unknown as AnyResource, stamped };
}

/**
 * The adopted form of a hand-written file: the operator's text (comments and layout kept)
 * with the datastore's resourceVersion, uid and creationTimestamp, and a fresh stamp.
 */
export function restamp(
  text: string,
  meta: { resourceVersion: string; uid: string; creationTimestamp: string; apiVersion: string },
): string {
  const doc = parseDocument(body(text).body);
  if (!isMap(doc.contents)) throw new Error('restamp: not a mapping');
  if (typeof doc.get('apiVersion') !== 'string') doc.set('apiVersion', meta.apiVersion);
  doc.setIn(['metadata', 'resourceVersion'], meta.resourceVersion);
  doc.setIn(['metadata', 'uid'], meta.uid);
  doc.setIn(['metadata', 'creationTimestamp'], meta.creationTimestamp);
  return stamp(doc.toString());
}

/** Identity of a file's state: a change to any of these is worth reading the file for. */
export function statKey(st: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

export const TEMP_MARK = '.tabby-tmp-';

// The writes below are synchronous on purpose: a durable write of a small file is four quick
// syscalls plus two fsyncs (about 0.4 ms on a local disk), while the same steps through the
// thread pool cost a round trip each and queue behind whatever else the process does (the
// node daemon's kernel passes); a CNI ADD waits on three of them.
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function ensureDir(dir: string): void {
  // A new namespace directory: create it and make its entry in the parent durable.
  mkdirSync(dir, { recursive: true });
  syncDir(dirname(dir));
}

/**
 * Replaces `abs` with `text` atomically and durably: a temp file in the same directory,
 * fsync, rename over the target, fsync the directory. Returns the new file's stat key.
 */
export function writeAtomic(abs: string, text: string): string {
  const dir = dirname(abs);
  const tmp = join(dir, `.${basename(abs)}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    ensureDir(dir);
    fd = openSync(tmp, 'wx', 0o644);
  }
  let key: string;
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
    key = statKey(fstatSync(fd));
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, abs);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
  return key;
}

/** Removes `abs` durably. */
export function removeDurably(abs: string): void {
  rmSync(abs);
  syncDir(dirname(abs));
}

/** A stable uid for a hand-written object that has none (UUIDv5-style, from kind/namespace/name). */
export function derivedUid(key: ResourceKey): string {
  const h = createHash('sha1')
    .update(`tabby.dev:${key.kind}/${key.namespace ?? ''}/${key.name}`)
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
