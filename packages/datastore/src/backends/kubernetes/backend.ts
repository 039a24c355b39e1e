// The Kubernetes backend: every kind is a custom resource of group tabby.dev, version v1
// (plural from KIND_INFO), read and written through client-node's custom objects API and
// watched with the list+watch protocol of
// https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
import type { IncomingMessage } from 'node:http';
import {
  ApiException,
  CustomObjectsApi,
  ServerConfiguration,
  createConfiguration,
} from '@kubernetes/client-node';
import type { KubeConfig, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { KIND_INFO } from '../../resources/kinds.js';
import type { Kind } from '../../resources/kinds.js';
import { API_GROUP, API_VERSION, formatKey, keyOf } from '../../resources/meta.js';
import type { ObjectMeta, ResourceKey } from '../../resources/meta.js';
import type { AnyResource, Backend, ListResult, Watch, WatchOptions } from '../../store/backend.js';
import type { DatastoreError } from '../../store/errors.js';
import { ConflictError, NotFoundError, UnavailableError, ValidationError } from '../../store/errors.js';
import { Backoff, sleep } from './backoff.js';
import { loadKubeConfig, serverOf } from './config.js';
import type { KubernetesConnection } from './config.js';
import { kubeRequest, readBody } from './request.js';
import { errorFromResponse, isTransientCode } from './status.js';
import type { FailedCall } from './status.js';
import { KubernetesWatch } from './watch.js';
import type { WatchTransport } from './watch.js';

export const CRD_VERSION = 'v1';

/** The custom resource name of a kind: `<plural>.tabby.dev`, as a CRD's metadata.name. */
export function crdName(kind: Kind): string {
  return `${KIND_INFO[kind].plural}.${API_GROUP}`;
}

export interface KubernetesBackendOptions {
  /** Deadline of one get/list/create/update/delete request, in ms. Default 30 000. */
  readonly requestTimeoutMs?: number;
  /** Tries of a read (get, list) that fails transiently (network, 429, 5xx). Default 5. */
  readonly readAttempts?: number;
  /** First retry / reconnect delay and its cap, in ms. Defaults 250 and 30 000. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * Each watch asks the server to end it after a random timeoutSeconds in [t, 2t), as
   * client-go's reflector does, so reconnects spread out. Default 300.
   */
  readonly watchTimeoutSeconds?: number;
  /** A watch still open this long past its timeoutSeconds is taken as stalled and reopened (ms). Default 30 000. */
  readonly watchGraceMs?: number;
}

type Meta = Record<string, unknown>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/**
 * The stored object as the datastore sees it: apiVersion, kind, spec, and only the
 * ObjectMeta fields (managedFields, generation and the rest are the API server's business).
 */
export function toResource(kind: Kind, raw: unknown): AnyResource {
  if (!isRecord(raw) || !isRecord(raw['metadata']) || typeof raw['metadata']['name'] !== 'string')
    throw new UnavailableError(`the Kubernetes API server returned something that is not a ${kind}`);
  if (raw['kind'] !== undefined && raw['kind'] !== kind)
    throw new UnavailableError(
      `the Kubernetes API server returned a ${JSON.stringify(raw['kind'])} where a ${kind} was expected`,
    );
  const m = raw['metadata'];
  const meta: ObjectMeta = { name: m['name'] as string };
  if (typeof m['namespace'] === 'string' && m['namespace'] !== '') meta.namespace = m['namespace'];
  const labels = stringMap(m['labels']);
  if (labels !== undefined) meta.labels = labels;
  const annotations = stringMap(m['annotations']);
  if (annotations !== undefined) meta.annotations = annotations;
  if (typeof m['resourceVersion'] === 'string') meta.resourceVersion = m['resourceVersion'];
  if (typeof m['uid'] === 'string') meta.uid = m['uid'];
  if (typeof m['creationTimestamp'] === 'string') meta.creationTimestamp = m['creationTimestamp'];
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: meta,
    spec: raw['spec'] === undefined ? {} : raw['spec'],
  };
}

/** The body of a POST (no resourceVersion: the server assigns it) or PUT (with the one read). */
function toBody(obj: AnyResource, withVersion: boolean): Record<string, unknown> {
  const m = obj.metadata;
  const metadata: Meta = { name: m.name };
  if (m.namespace !== undefined) metadata['namespace'] = m.namespace;
  if (m.labels !== undefined) metadata['labels'] = m.labels;
  if (m.annotations !== undefined) metadata['annotations'] = m.annotations;
  if (withVersion) metadata['resourceVersion'] = m.resourceVersion;
  return { apiVersion: API_VERSION, kind: obj.kind, metadata, spec: obj.spec };
}

interface Failure {
  readonly error: DatastoreError;
  /** Worth retrying a read: network failure, timeout, 429, 5xx. */
  readonly transient: boolean;
  /** The server certainly did not act on it (429, connection refused): a write may be retried too. */
  readonly notApplied: boolean;
  readonly retryAfterMs?: number;
}

export class KubernetesBackend implements Backend {
  readonly type = 'kubernetes';
  readonly kubeConfig: KubeConfig;
  /** The API server URL, without a trailing slash. */
  readonly server: string;
  private readonly api: CustomObjectsApi;
  private readonly closing = new AbortController();
  private readonly watches = new Set<KubernetesWatch>();
  private readonly o: Required<KubernetesBackendOptions>;

  /** From a ready KubeConfig, or from where to find one (in-cluster, a kubeconfig path, the defaults). */
  constructor(source: KubeConfig | KubernetesConnection, options: KubernetesBackendOptions = {}) {
    this.kubeConfig = 'getCurrentCluster' in source ? source : loadKubeConfig(source);
    this.server = serverOf(this.kubeConfig).replace(/\/+$/, '');
    this.o = {
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      readAttempts: Math.max(1, options.readAttempts ?? 5),
      backoffInitialMs: options.backoffInitialMs ?? 250,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      watchTimeoutSeconds: Math.max(1, options.watchTimeoutSeconds ?? 300),
      watchGraceMs: options.watchGraceMs ?? 30_000,
    };
    const closing = this.closing.signal;
    const timeoutMs = this.o.requestTimeoutMs;
    // client-node sets no deadline of its own; every request gets ours, and close() cuts all.
    const deadline = {
      pre: (ctx: RequestContext): Promise<RequestContext> => {
        ctx.setSignal(AbortSignal.any([AbortSignal.timeout(timeoutMs), closing]));
        return Promise.resolve(ctx);
      },
      post: (ctx: ResponseContext): Promise<ResponseContext> => Promise.resolve(ctx),
    };
    this.api = new CustomObjectsApi(
      createConfiguration({
        baseServer: new ServerConfiguration(this.server, {}),
        authMethods: { default: this.kubeConfig },
        promiseMiddleware: [deadline],
      }),
    );
  }

  private target(key: { kind: Kind; namespace?: string | undefined }): {
    group: string;
    version: string;
    plural: string;
    namespace?: string;
  } {
    const info = KIND_INFO[key.kind];
    const base = { group: API_GROUP, version: CRD_VERSION, plural: info.plural };
    if (!info.namespaced) return base;
    if (key.namespace === undefined || key.namespace === '')
      throw new ValidationError([
        { resource: key.kind, path: 'metadata.namespace', reason: `required: ${key.kind} is namespaced` },
      ]);
    return { ...base, namespace: key.namespace };
  }

  private checkOpen(): void {
    if (this.closing.signal.aborted) throw new UnavailableError('the Kubernetes backend is closed');
  }

  private classify(e: unknown, call: FailedCall): Failure {
    if (e instanceof ApiException) {
      const code = e.code;
      const headers = (e.headers ?? {}) as Record<string, string | undefined>;
      const ra = Number(headers['retry-after']);
      return {
        error: errorFromResponse(code, e.body, call),
        transient: isTransientCode(code),
        notApplied: code === 429,
        ...(Number.isFinite(ra) && ra >= 0 ? { retryAfterMs: ra * 1000 } : {}),
      };
    }
    const what = `${call.verb} ${formatKey(call.key)}`;
    const err = e instanceof Error ? e : new Error(String(e));
    const code = (err as { code?: unknown }).code;
    if (this.closing.signal.aborted)
      return {
        error: new UnavailableError(`${what}: the Kubernetes backend is closed`),
        transient: false,
        notApplied: false,
      };
    if (err.name === 'AbortError' || err.name === 'TimeoutError')
      return {
        error: new UnavailableError(
          `${what}: no answer from ${this.server} within ${this.o.requestTimeoutMs} ms`,
          {
            cause: err,
          },
        ),
        transient: true,
        notApplied: false,
      };
    if (err.name === 'FetchError' || typeof code === 'string')
      return {
        error: new UnavailableError(
          `${what}: cannot reach the Kubernetes API server ${this.server}: ${err.message}`,
          {
            cause: err,
          },
        ),
        transient: true,
        notApplied: code === 'ECONNREFUSED',
      };
    // Configuration problems (client-node refuses plain http without skipTLSVerify, a missing file…).
    return {
      error: new UnavailableError(`${what}: ${err.message}`, { cause: err }),
      transient: false,
      notApplied: false,
    };
  }

  /**
   * One API call with the retry policy: reads retry transient failures with backoff; writes
   * retry only what the server certainly did not apply (429, connection refused), since a
   * create or update that timed out may have been stored.
   */
  private async call<T>(
    call: FailedCall,
    write: boolean,
    fn: () => Promise<T>,
    attempts = this.o.readAttempts,
  ): Promise<T> {
    const backoff = new Backoff(this.o.backoffInitialMs, this.o.backoffMaxMs);
    for (let i = 1; ; i++) {
      this.checkOpen();
      try {
        return await fn();
      } catch (e) {
        const f = this.classify(e, call);
        const again = (write ? f.notApplied : f.transient) && i < attempts && !this.closing.signal.aborted;
        if (!again) throw f.error;
        const wait = Math.min(this.o.backoffMaxMs, Math.max(backoff.next(), f.retryAfterMs ?? 0));
        await sleep(wait, this.closing.signal);
      }
    }
  }

  async get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    const t = this.target(key);
    try {
      const raw: unknown = await this.call({ key, verb: 'get' }, false, () =>
        t.namespace === undefined
          ? this.api.getClusterCustomObject({ ...t, name: key.name })
          : this.api.getNamespacedCustomObject({ ...t, namespace: t.namespace, name: key.name }),
      );
      return toResource(key.kind, raw);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  list(kind: Kind, opts: { readonly namespace?: string } = {}): Promise<ListResult> {
    return this.listWith(kind, opts.namespace, this.o.readAttempts);
  }

  private async listWith(kind: Kind, namespace: string | undefined, attempts: number): Promise<ListResult> {
    const info = KIND_INFO[kind];
    const base = { group: API_GROUP, version: CRD_VERSION, plural: info.plural };
    const key = { kind, name: '(list)', ...(namespace === undefined ? {} : { namespace }) };
    const raw: unknown = await this.call(
      { key, verb: 'list' },
      false,
      () =>
        !info.namespaced
          ? this.api.listClusterCustomObject(base)
          : namespace === undefined
            ? this.api.listCustomObjectForAllNamespaces(base)
            : this.api.listNamespacedCustomObject({ ...base, namespace }),
      attempts,
    );
    if (!isRecord(raw) || !Array.isArray(raw['items']) || !isRecord(raw['metadata']))
      throw new UnavailableError(
        `list ${kind}: the Kubernetes API server returned something that is not a list`,
      );
    const revision = raw['metadata']['resourceVersion'];
    if (typeof revision !== 'string' || revision === '')
      throw new UnavailableError(
        `list ${kind}: the Kubernetes API server returned a list without a resourceVersion`,
      );
    return { items: raw['items'].map((i: unknown) => toResource(kind, i)), revision };
  }

  async create(obj: AnyResource): Promise<AnyResource> {
    const key = keyOf(obj);
    const t = this.target(key);
    this.refuseNamespaceOnClusterScoped(obj);
    const body = toBody(obj, false);
    const raw: unknown = await this.call({ key, verb: 'create' }, true, () =>
      t.namespace === undefined
        ? this.api.createClusterCustomObject({ ...t, body })
        : this.api.createNamespacedCustomObject({ ...t, namespace: t.namespace, body }),
    );
    return toResource(obj.kind, raw);
  }

  async update(obj: AnyResource): Promise<AnyResource> {
    const key = keyOf(obj);
    const t = this.target(key);
    this.refuseNamespaceOnClusterScoped(obj);
    const rv = obj.metadata.resourceVersion;
    // The contract makes update a compare-and-swap; for custom resources the API server would
    // answer 422 (AllowUnconditionalUpdate is false), so refuse before asking.
    if (rv === undefined || rv === '') throw new ConflictError(key, rv);
    const body = toBody(obj, true);
    const raw: unknown = await this.call({ key, verb: 'update', expected: rv }, true, () =>
      t.namespace === undefined
        ? this.api.replaceClusterCustomObject({ ...t, name: key.name, body })
        : this.api.replaceNamespacedCustomObject({ ...t, namespace: t.namespace, name: key.name, body }),
    );
    return toResource(obj.kind, raw);
  }

  /**
   * The API server answers a custom resource DELETE with a Status, not the object, so the
   * object is read first and deleted on the precondition that it is still that version
   * (and uid): what we return is exactly what was deleted. Without a caller's version, a
   * change between the read and the delete is read again.
   */
  async delete(
    key: ResourceKey<Kind>,
    opts: { readonly resourceVersion?: string } = {},
  ): Promise<AnyResource> {
    const t = this.target(key);
    for (let attempt = 1; ; attempt++) {
      const cur = await this.get(key);
      if (cur === undefined) throw new NotFoundError(key);
      const rv = cur.metadata.resourceVersion;
      if (opts.resourceVersion !== undefined && opts.resourceVersion !== rv)
        throw new ConflictError(key, opts.resourceVersion, rv);
      const preconditions: Record<string, string> = {};
      if (rv !== undefined) preconditions['resourceVersion'] = rv;
      if (cur.metadata.uid !== undefined) preconditions['uid'] = cur.metadata.uid;
      const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions };
      try {
        await this.call({ key, verb: 'delete', expected: opts.resourceVersion ?? rv ?? '' }, true, () =>
          t.namespace === undefined
            ? this.api.deleteClusterCustomObject({ ...t, name: key.name, body })
            : this.api.deleteNamespacedCustomObject({ ...t, namespace: t.namespace, name: key.name, body }),
        );
        return cur;
      } catch (e) {
        if (e instanceof ConflictError && opts.resourceVersion === undefined && attempt < 5) continue;
        if (e instanceof ConflictError && opts.resourceVersion !== undefined)
          throw new ConflictError(key, opts.resourceVersion);
        throw e;
      }
    }
  }

  private refuseNamespaceOnClusterScoped(obj: AnyResource): void {
    if (!KIND_INFO[obj.kind].namespaced && obj.metadata.namespace !== undefined)
      throw new ValidationError([
        {
          resource: formatKey({ kind: obj.kind, name: obj.metadata.name }),
          path: 'metadata.namespace',
          reason: `must be empty: ${obj.kind} is cluster-scoped`,
        },
      ]);
  }

  watch(kind: Kind, opts: WatchOptions = {}): Watch {
    const info = KIND_INFO[kind];
    const namespace = info.namespaced ? opts.namespace : undefined;
    const transport: WatchTransport = {
      list: () => this.listWith(kind, namespace, 1),
      open: (rv, timeoutSeconds, signal) => this.openWatch(kind, namespace, rv, timeoutSeconds, signal),
      toResource: (raw) => toResource(kind, raw),
      failure: (code, body) =>
        errorFromResponse(code, body, {
          key: { kind, name: '(watch)', ...(namespace === undefined ? {} : { namespace }) },
          verb: 'watch',
        }),
    };
    const w: KubernetesWatch = new KubernetesWatch(
      transport,
      kind,
      {
        ...(opts.revision === undefined ? {} : { revision: opts.revision }),
        backoffInitialMs: this.o.backoffInitialMs,
        backoffMaxMs: this.o.backoffMaxMs,
        watchTimeoutSeconds: this.o.watchTimeoutSeconds,
        watchGraceMs: this.o.watchGraceMs,
      },
      () => this.watches.delete(w),
    );
    if (this.closing.signal.aborted) w.close();
    else this.watches.add(w);
    return w;
  }

  /** Opens `GET …?watch=true&resourceVersion=R&allowWatchBookmarks=true&timeoutSeconds=T` (see request.ts for why not client-node's Watch). */
  private async openWatch(
    kind: Kind,
    namespace: string | undefined,
    rv: string,
    timeoutSeconds: number,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    this.checkOpen();
    const plural = KIND_INFO[kind].plural;
    const path =
      namespace === undefined
        ? `/apis/${API_GROUP}/${CRD_VERSION}/${plural}`
        : `/apis/${API_GROUP}/${CRD_VERSION}/namespaces/${encodeURIComponent(namespace)}/${plural}`;
    const query = new URLSearchParams({
      watch: 'true',
      resourceVersion: rv,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    return await kubeRequest(this.kubeConfig, new URL(`${this.server}${path}?${query.toString()}`), {
      signal,
    });
  }

  /**
   * The labels of the Kubernetes Namespace `name` (core/v1, not one of Tabby's kinds): what
   * an IPPool's namespaceSelector is matched against, read from the API as Calico's CNI
   * plugin reads it (cni-plugin/pkg/ipamplugin/ipam_plugin.go, getNamespace). A plain GET,
   * as openWatch: client-node's CoreV1Api would add most of a megabyte to what a CNI ADD
   * loads. Reads retry as get does; NotFoundError when there is no such namespace.
   */
  async namespaceLabels(name: string): Promise<Record<string, string>> {
    const key = { kind: 'Namespace' as const, name };
    const raw = await this.call({ key, verb: 'get' }, false, () =>
      this.getJson(`/api/v1/namespaces/${encodeURIComponent(name)}`),
    );
    if (!isRecord(raw) || raw['kind'] !== 'Namespace' || !isRecord(raw['metadata']))
      throw new UnavailableError(
        `get Namespace ${name}: the Kubernetes API server returned something that is not a Namespace`,
      );
    return stringMap(raw['metadata']['labels']) ?? {};
  }

  /**
   * GET `path` (kubeRequest: client-node's TLS and credentials), under the request
   * deadline; the JSON body. An error status throws client-node's ApiException, as its
   * generated APIs do, so classify() reads it the same way.
   */
  private async getJson(path: string): Promise<unknown> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.o.requestTimeoutMs), this.closing.signal]);
    const res = await kubeRequest(this.kubeConfig, new URL(`${this.server}${path}`), { signal });
    const body = await readBody(res);
    const code = res.statusCode ?? 0;
    if (code < 200 || code > 299) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
      throw new ApiException(code, `HTTP ${code}`, body, headers);
    }
    try {
      return JSON.parse(body) as unknown;
    } catch (e) {
      throw new UnavailableError(`GET ${path}: the Kubernetes API server answered with no JSON`, {
        cause: e,
      });
    }
  }

  close(): Promise<void> {
    this.closing.abort();
    for (const w of [...this.watches]) w.close();
    return Promise.resolve();
  }
}
