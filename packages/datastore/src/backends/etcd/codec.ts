// Stored values: the whole resource as JSON, without metadata.resourceVersion, which is
// always the key's mod_revision (so it cannot disagree with what etcd compares on).
import type { IKeyValue } from 'etcd3';
import type { Kind } from '../../resources/kinds.js';
import type { ResourceKey } from '../../resources/meta.js';
import { API_VERSION, formatKey } from '../../resources/meta.js';
import type { AnyResource } from '../../store/backend.js';
import { ValidationError } from '../../store/errors.js';

export function encode(obj: AnyResource): Buffer {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return Buffer.from(JSON.stringify({ ...obj, metadata }));
}

/** The resource stored under `key` at `revision` (its mod_revision, or a deletion's revision). */
export function decode(key: ResourceKey<Kind>, value: Buffer, revision: string): AnyResource {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString());
  } catch (e) {
    throw corrupt(key, `value is not JSON: ${(e as Error).message}`);
  }
  if (!isRecord(parsed)) throw corrupt(key, 'value is not a JSON object');
  const { metadata } = parsed;
  if (parsed['kind'] !== key.kind) throw corrupt(key, `kind is ${JSON.stringify(parsed['kind'])}`);
  if (!isRecord(metadata)) throw corrupt(key, 'metadata is not an object');
  if (metadata['name'] !== key.name)
    throw corrupt(key, `metadata.name is ${JSON.stringify(metadata['name'])}`);
  if (metadata['namespace'] !== key.namespace)
    throw corrupt(key, `metadata.namespace is ${JSON.stringify(metadata['namespace'])}`);
  metadata['resourceVersion'] = revision;
  return parsed as unknown as AnyResource;
}

export function decodeKv(key: ResourceKey<Kind>, kv: IKeyValue): AnyResource {
  return decode(key, kv.value, kv.mod_revision);
}

/** What a deletion event carries when etcd no longer has the previous value (compacted). */
export function tombstone(key: ResourceKey<Kind>, revision: string): AnyResource {
  const metadata =
    key.namespace === undefined
      ? { name: key.name, resourceVersion: revision }
      : { name: key.name, namespace: key.namespace, resourceVersion: revision };
  return { apiVersion: API_VERSION, kind: key.kind, metadata, spec: {} };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function corrupt(key: ResourceKey, reason: string): ValidationError {
  return new ValidationError([{ resource: formatKey(key), path: '', reason: `stored in etcd: ${reason}` }]);
}
