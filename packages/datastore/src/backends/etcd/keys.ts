// Where resources live in etcd: `<prefix>/<plural>/<name>`, and
// `<prefix>/<plural>/<namespace>/<name>` for namespaced kinds. Ranges always end in `/`, so
// one kind's range never takes in another whose plural starts the same way.
import { KIND_INFO } from '../../resources/kinds.js';
import type { Kind } from '../../resources/kinds.js';
import type { ResourceKey } from '../../resources/meta.js';
import { formatKey } from '../../resources/meta.js';
import { ValidationError } from '../../store/errors.js';

export const DEFAULT_PREFIX = '/tabby/v1';

/** A half-open byte range [start, end) of etcd keys. */
export interface KeyRange {
  readonly start: Buffer;
  readonly end: Buffer;
}

export class KeyLayout {
  /** Without a trailing slash. */
  readonly prefix: string;

  constructor(prefix = DEFAULT_PREFIX) {
    const p = prefix.replace(/\/+$/, '');
    if (p === '' || !p.startsWith('/')) throw new Error(`etcd key prefix must start with "/": ${prefix}`);
    this.prefix = p;
  }

  key(k: ResourceKey<Kind>): Buffer {
    const info = KIND_INFO[k.kind];
    checkSegment(k, 'metadata.name', k.name);
    if (info.namespaced) {
      if (k.namespace === undefined) throw invalid(k, 'metadata.namespace', `${k.kind} is namespaced`);
      checkSegment(k, 'metadata.namespace', k.namespace);
      return Buffer.from(`${this.prefix}/${info.plural}/${k.namespace}/${k.name}`);
    }
    if (k.namespace !== undefined) throw invalid(k, 'metadata.namespace', `${k.kind} is not namespaced`);
    return Buffer.from(`${this.prefix}/${info.plural}/${k.name}`);
  }

  /** Every object of `kind`, or of one namespace of it. */
  range(kind: Kind, namespace?: string): KeyRange {
    const info = KIND_INFO[kind];
    let p = `${this.prefix}/${info.plural}/`;
    if (namespace !== undefined) {
      if (!info.namespaced) throw invalid({ kind, name: '' }, 'namespace', `${kind} is not namespaced`);
      checkSegment({ kind, name: '' }, 'namespace', namespace);
      p += `${namespace}/`;
    }
    const start = Buffer.from(p);
    return { start, end: prefixEnd(start) };
  }

  /** The resource key a stored etcd key names, or undefined if it is not one of `kind`'s. */
  parse(kind: Kind, key: Buffer): ResourceKey<Kind> | undefined {
    const info = KIND_INFO[kind];
    const base = `${this.prefix}/${info.plural}/`;
    const s = key.toString();
    if (!s.startsWith(base)) return undefined;
    const parts = s.slice(base.length).split('/');
    if (info.namespaced) {
      const [namespace, name] = parts;
      if (parts.length !== 2 || namespace === undefined || name === undefined) return undefined;
      if (namespace === '' || name === '') return undefined;
      return { kind, name, namespace };
    }
    const [name] = parts;
    if (parts.length !== 1 || name === undefined || name === '') return undefined;
    return { kind, name };
  }
}

/** The first key after every key that starts with `prefix` (etcd's prefix range end). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function checkSegment(k: ResourceKey, path: string, v: string): void {
  if (v === '' || v.includes('/')) throw invalid(k, path, `must be non-empty and contain no "/": "${v}"`);
}

function invalid(k: ResourceKey, path: string, reason: string): ValidationError {
  return new ValidationError([{ resource: formatKey(k), path, reason }]);
}
