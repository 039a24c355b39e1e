// A kind's definition: its spec schema (type, validator and CRD schema in one) plus the
// checks a schema cannot express. Every kind file exports one `KindDef`; registry.ts
// collects them.
import type { Issue, Schema } from '../schema/index.js';
import { check } from '../schema/index.js';
import type { Kind } from './kinds.js';
import type { Resource } from './meta.js';

export interface KindDef<K extends Kind, S> {
  readonly kind: K;
  /** One line for the CRD and docs. */
  readonly description: string;
  readonly spec: Schema<S>;
  /**
   * Checks beyond the schema, run only when the schema passed: paths from the document root
   * (`spec.blockSize`). Pure: no datastore access (cross-resource checks live in Datastore).
   */
  readonly validate?: (r: Resource<K, S>) => Issue[];
  /** What `validate` checks, one sentence each, for docs/reference/resources.md (kept beside the code). */
  readonly checks?: readonly string[];
  /** Canonical form before storing (after defaults and validation), e.g. a CIDR's network address. */
  readonly normalize?: (r: Resource<K, S>) => void;
  /** Extra columns for `kubectl get` (CRD additionalPrinterColumns). */
  readonly columns?: readonly {
    readonly name: string;
    readonly jsonPath: string;
    readonly type: 'string' | 'integer' | 'boolean';
  }[];
}

export function defineKind<K extends Kind, S>(def: KindDef<K, S>): KindDef<K, S> {
  return def;
}

/** Every problem with `obj` as a `def.kind`: the schema's first, then the kind's own checks. */
export function validateSpec<K extends Kind, S>(def: KindDef<K, S>, obj: Resource<K, unknown>): Issue[] {
  const issues = check(def.spec, obj.spec, 'spec');
  if (issues.length > 0 || def.validate === undefined) return issues;
  return def.validate(obj as Resource<K, S>);
}
