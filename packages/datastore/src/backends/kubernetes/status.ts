// The API server's error body (meta/v1 Status) and its translation into the datastore's
// typed errors. Field names follow
// https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
import type { Kind } from '../../resources/kinds.js';
import type { ResourceKey } from '../../resources/meta.js';
import { formatKey } from '../../resources/meta.js';
import type { DatastoreError } from '../../store/errors.js';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../store/errors.js';

export interface StatusCause {
  readonly reason?: string;
  readonly message?: string;
  readonly field?: string;
}

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly uid?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

export interface Status {
  readonly kind: 'Status';
  readonly apiVersion: string;
  readonly metadata: Record<string, unknown>;
  readonly status?: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: StatusDetails;
  readonly code?: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A Status from a parsed body, or undefined when the body is something else. */
export function asStatus(v: unknown): Status | undefined {
  if (!isRecord(v) || v['kind'] !== 'Status') return undefined;
  return v as unknown as Status;
}

/** Parses a response body (text) as a Status; undefined for empty or non-Status bodies. */
export function parseStatus(body: unknown): Status | undefined {
  if (typeof body !== 'string') return asStatus(body);
  if (body.trim() === '') return undefined;
  try {
    return asStatus(JSON.parse(body));
  } catch {
    return undefined;
  }
}

/** What the caller was doing, so the error can name it and carry its expectation. */
export interface FailedCall {
  /** A Tabby kind's object, or a core one (the Namespace the CNI plugin reads). */
  readonly key: ResourceKey<Kind | 'Namespace'>;
  readonly verb: 'get' | 'list' | 'create' | 'update' | 'delete' | 'watch';
  /** The resourceVersion the caller sent (update, conditional delete). */
  readonly expected?: string;
}

/** True for failures worth retrying: the server was unreachable, overloaded or failed. */
export function isTransientCode(code: number): boolean {
  return code === 429 || code >= 500;
}

/**
 * The datastore error for an HTTP error response. 404 NotFound, 409 AlreadyExists or
 * Conflict, 422 Invalid map to their typed errors; 401/403 name authentication and RBAC;
 * 429 and 5xx are Unavailable (transient); anything else is Unavailable with the server's words.
 */
export function errorFromResponse(code: number, body: unknown, call: FailedCall): DatastoreError {
  const st = parseStatus(body);
  const said = st?.message ?? (typeof body === 'string' && body.trim() !== '' ? body.trim() : undefined);
  const what = `${call.verb} ${formatKey(call.key)}`;
  switch (code) {
    case 404:
      return new NotFoundError(call.key);
    case 409:
      if (st?.reason === 'AlreadyExists') return new AlreadyExistsError(call.key);
      return new ConflictError(call.key, call.expected);
    case 400:
    case 422: {
      const causes = st?.details?.causes ?? [];
      const resource = formatKey(call.key);
      const issues =
        causes.length > 0
          ? causes.map((c) => ({
              resource,
              path: c.field ?? '',
              reason: c.message ?? c.reason ?? 'invalid',
            }))
          : [{ resource, path: '', reason: said ?? `rejected by the API server (HTTP ${code})` }];
      return new ValidationError(issues);
    }
    case 401:
      return new UnavailableError(
        `${what}: the Kubernetes API server rejected our credentials (401 Unauthorized: authentication failed` +
          `${said !== undefined && said !== 'Unauthorized' ? `: ${said}` : ''}); check the token or client certificate`,
      );
    case 403:
      return new UnavailableError(
        `${what}: forbidden by the Kubernetes API server (403, RBAC)${said === undefined ? '' : `: ${said}`}`,
      );
    default:
      return new UnavailableError(
        `${what}: Kubernetes API server answered HTTP ${code}${st?.reason === undefined ? '' : ` ${st.reason}`}` +
          `${said === undefined ? '' : `: ${said}`}`,
      );
  }
}
