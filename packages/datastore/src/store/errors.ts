// The datastore's typed errors. Backends translate their own (etcd compare failures,
// Kubernetes 404/409/410/422) into these, so callers branch on `code`, not on text.
import type { ResourceKey } from '../resources/meta.js';
import { formatKey } from '../resources/meta.js';

export type DatastoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Invalid' | 'Unavailable';

export abstract class DatastoreError extends Error {
  abstract readonly code: DatastoreErrorCode;
}

export class NotFoundError extends DatastoreError {
  override readonly name = 'NotFoundError';
  readonly code = 'NotFound';
  constructor(readonly key: ResourceKey) {
    super(`${formatKey(key)} not found`);
  }
}

export class AlreadyExistsError extends DatastoreError {
  override readonly name = 'AlreadyExistsError';
  readonly code = 'AlreadyExists';
  constructor(readonly key: ResourceKey) {
    super(`${formatKey(key)} already exists`);
  }
}

/** Compare-and-swap lost: the object changed since the caller read it. Re-read and retry. */
export class ConflictError extends DatastoreError {
  override readonly name = 'ConflictError';
  readonly code = 'Conflict';
  constructor(
    readonly key: ResourceKey,
    /** The resourceVersion the caller sent. */
    readonly expected: string | undefined,
    /** The current one, when the backend knows it. */
    readonly actual?: string,
  ) {
    super(
      `${formatKey(key)} was modified (expected resourceVersion ${expected ?? '(none)'}` +
        `${actual === undefined ? '' : `, found ${actual}`}); read it again and retry`,
    );
  }
}

export interface ValidationIssue {
  /** e.g. `IPPool default-ipv4-ippool`. */
  readonly resource: string;
  /** e.g. `spec.blockSize`. */
  readonly path: string;
  readonly reason: string;
}

export class ValidationError extends DatastoreError {
  override readonly name = 'ValidationError';
  readonly code = 'Invalid';
  constructor(readonly issues: readonly ValidationIssue[]) {
    super(issues.map((i) => `${i.resource}: ${i.path === '' ? '' : `${i.path}: `}${i.reason}`).join('\n'));
  }
}

/** The backend could not be reached or failed; the operation may be retried. */
export class UnavailableError extends DatastoreError {
  override readonly name = 'UnavailableError';
  readonly code = 'Unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
