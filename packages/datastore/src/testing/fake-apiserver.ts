// An in-process stand-in for kube-apiserver serving Tabby's custom resources (tabby.dev/v1)
// and the built-in kinds Tabby reads (core/v1 Namespaces for the CNI plugin's namespace
// labels; Secrets, Services, Nodes with their status subresource and discovery.k8s.io/v1
// EndpointSlices for the node daemon), for the tests of the Kubernetes backend, the CNI
// plugin and the node daemon. No real API server can run on the test machine, so this follows
// the documented API semantics for the calls Tabby makes; each branch names the behaviour it
// follows. Sources:
//   [concepts]   https://kubernetes.io/docs/reference/using-api/api-concepts/
//                (#efficient-detection-of-changes, #watch-bookmarks, #resource-versions,
//                 #410-gone-responses, #patch-and-apply "Updates to existing resources")
//   [status]     https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
//   [conventions] https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#response-status-kind
//   [errors.go]  k8s.io/apimachinery/pkg/api/errors/errors.go (message formats of NewNotFound,
//                NewAlreadyExists, NewConflict, NewInvalid, NewResourceExpired)
//   [store.go]   k8s.io/apiserver/pkg/registry/generic/registry/store.go (Update: conditional
//                unless the strategy allows unconditional updates; custom resources do not)
//   [crd-etcd]   k8s.io/apiextensions-apiserver/pkg/registry/customresource/etcd.go (no
//                ReturnDeletedObject: a DELETE answers with a Status, not the object)
//   [list-kind]  kube-apiserver omits apiVersion and kind on the items of a built-in kind's
//                list (not on a custom resource's): kubernetes/kubernetes#3030, #63676
//   [fields]     field selectors metadata.name and metadata.namespace, on every kind
//                (k8s.io/apimachinery runtime.DefaultMetaV1FieldSelectorConversion; core/v1's
//                conversion funcs answer others with "field label not supported: <label>")
//   [partial]    k8s.io/apiserver/pkg/endpoints/handlers/response.go asPartialObjectMetadata(List),
//                asked for by client-go's metadata client (k8s.io/client-go/metadata/metadata.go)
//                with Accept: application/json;as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1
//   [secret]     https://kubernetes.io/docs/tasks/configmap-secret/managing-secret-using-config-file/
//                (stringData is merged into data on write and never returned)
//   [smp]        strategic merge patch: https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
//                and k8s.io/api/core/v1/types.go (NodeStatus conditions and addresses:
//                patchStrategy merge, patchMergeKey type); client-go's Nodes().PatchStatus sends
//                one to nodes/<name>/status (typed/core/v1/node_expansion.go)
//   [ext-res]    https://kubernetes.io/docs/tasks/administer-cluster/extended-resource-node/
//                (a JSON patch of nodes/<name>/status, answered with the Node)
// What it does not do: schemas (a `validate` hook stands in), defaulting (Service cluster IPs,
// Secret type), label selectors, paging, PATCH other than of a Node's status (strategic
// merge, merge patch, JSON patch without move/copy), $patch directives, finalizers, generateName,
// the watch cache's "not older than" reads, protobuf.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KIND_INFO, KINDS } from '../resources/kinds.js';
import type { Kind } from '../resources/kinds.js';

export const GROUP = 'tabby.dev';
export const VERSION = 'v1';

type Json = Record<string, unknown>;

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Json;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: StatusCause[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** A failure Status as [errors.go] builds them ([status] for the fields). */
export function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusBody['details'],
): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** The optimistic-lock message of [store.go] (OptimisticLockErrorMsg). */
export const OPTIMISTIC_LOCK_MSG =
  'the object has been modified; please apply your changes to the latest version and try again';

// RFC 1123 subdomain, the name rule the API server applies to custom resources.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A resource the server serves: one of Tabby's kinds, or a built-in kind. */
export interface ApiResource {
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** '' for the core group (served under /api/v1). */
  readonly group: string;
  readonly version: string;
  readonly builtin: boolean;
}
type Resource = ApiResource;

/** The built-in kinds served besides Tabby's: what the node daemon reads and patches. */
export const BUILTIN_RESOURCES: readonly ApiResource[] = [
  { kind: 'Namespace', plural: 'namespaces', namespaced: false, group: '', version: 'v1', builtin: true },
  { kind: 'Secret', plural: 'secrets', namespaced: true, group: '', version: 'v1', builtin: true },
  { kind: 'Service', plural: 'services', namespaced: true, group: '', version: 'v1', builtin: true },
  { kind: 'Node', plural: 'nodes', namespaced: false, group: '', version: 'v1', builtin: true },
  { kind: 'ConfigMap', plural: 'configmaps', namespaced: true, group: '', version: 'v1', builtin: true },
  {
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
    group: 'discovery.k8s.io',
    version: 'v1',
    builtin: true,
  },
];

const apiVersionOf = (r: Resource): string => (r.group === '' ? r.version : `${r.group}/${r.version}`);
const resourceKey = (group: string, version: string, plural: string): string =>
  `${group}/${version}/${plural}`;

/** A field selector term ([fields]): metadata.name or metadata.namespace, = / == / !=. */
interface FieldTerm {
  readonly field: 'metadata.name' | 'metadata.namespace';
  readonly value: string;
  readonly equal: boolean;
}

interface Change {
  readonly rev: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly res: Resource;
  readonly namespace: string;
  readonly object: Json;
}

interface Watcher {
  readonly res: Resource;
  readonly namespace: string | undefined;
  readonly fields: readonly FieldTerm[];
  /** Objects are sent as PartialObjectMetadata ([partial]). */
  readonly partial: boolean;
  readonly response: ServerResponse;
  readonly bookmarks: boolean;
  readonly timers: NodeJS.Timeout[];
  /** The highest revision sent, for bookmarks. */
  sent: number;
}

export interface FakeApiServerOptions {
  /** 0 (default) lets the kernel choose; tests on this machine may also use 23840-23889. */
  readonly port?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Require `Authorization: Bearer <token>`; 401 otherwise. */
  readonly token?: string;
  /** Changes kept for watches from an old resourceVersion (etcd keeps about 5 minutes). Default 1000. */
  readonly historyWindow?: number;
  /** How often a watch that asked for bookmarks gets one (ms). Default 1000. */
  readonly bookmarkIntervalMs?: number;
  /** Schema validation stand-in: causes make a create/update fail with 422 Invalid. */
  readonly validate?: (obj: Json) => StatusCause[];
  /** The first resourceVersion handed out is this plus one. Default 1000 (etcd's are never small). */
  readonly startRevision?: number;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly status: number;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly accept: string | undefined;
  /** The parsed request body (PATCH bodies, for tests to check). */
  readonly body: unknown;
}

export class FakeApiServer {
  private readonly server: http.Server;
  private rev: number;
  private readonly objects = new Map<string, Json>();
  private history: Change[] = [];
  /** Highest revision dropped from history (compacted); watches from before it get 410. */
  private compacted: number;
  private readonly watchers = new Set<Watcher>();
  private failures: { count: number; code: number; retryAfterSeconds: number } | undefined;
  private historyWindow: number;
  /** Added before every response (ms). */
  latencyMs = 0;
  private closed = false;
  token: string | undefined;
  readonly requests: RequestRecord[] = [];
  private readonly resources = new Map<string, Resource>();

  private constructor(private readonly opts: FakeApiServerOptions) {
    this.rev = opts.startRevision ?? 1000;
    this.compacted = this.rev;
    this.historyWindow = opts.historyWindow ?? 1000;
    this.token = opts.token;
    for (const kind of KINDS) {
      const i = KIND_INFO[kind];
      this.resources.set(resourceKey(GROUP, VERSION, i.plural), {
        kind,
        plural: i.plural,
        namespaced: i.namespaced,
        group: GROUP,
        version: VERSION,
        builtin: false,
      });
    }
    for (const r of BUILTIN_RESOURCES) this.resources.set(resourceKey(r.group, r.version, r.plural), r);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req, res);
    };
    this.server = opts.tls === undefined ? http.createServer(handler) : https.createServer(opts.tls, handler);
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.opts.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.port}`;
  }

  get revision(): string {
    return String(this.rev);
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  // ---- fault injection ----

  /** Cuts every open watch connection abruptly (a dead API server, a dropped TCP connection). */
  dropWatches(): void {
    for (const w of [...this.watchers]) {
      this.endWatcher(w);
      w.response.socket?.destroy();
    }
  }

  /** Ends every open watch cleanly, as the API server does when a watch's timeout passes. */
  endWatches(): void {
    for (const w of [...this.watchers]) {
      this.endWatcher(w);
      w.response.end();
    }
  }

  /** The next `count` requests fail with `code` (500, 503, 403 or 429; a 429 carries Retry-After). */
  failNext(count: number, code = 500, retryAfterSeconds = 0): void {
    this.failures = count > 0 ? { count, code, retryAfterSeconds } : undefined;
  }

  /** Keeps only the last `n` changes; a watch from before them gets 410 Gone. */
  setHistoryWindow(n: number): void {
    this.historyWindow = n;
    this.trimHistory();
  }

  /**
   * How a watch from a compacted revision is refused: an ERROR event with a 410 Status in a
   * 200 stream (what kube-apiserver sends), or a plain HTTP 410 response (also allowed by
   * [concepts] "410 Gone responses").
   */
  expiredAs: 'event' | 'http' = 'event';

  /** Stores an object as a POST would, synchronously and without HTTP (to place a write between two client steps). */
  createDirect(kind: Kind, obj: Json): Json {
    const r = this.resources.get(resourceKey(GROUP, VERSION, KIND_INFO[kind].plural))!;
    const ns = (obj['metadata'] as Json | undefined)?.['namespace'];
    const out = this.create(r, typeof ns === 'string' ? ns : undefined, structuredClone(obj));
    if (out.status !== 201) throw new Error(`createDirect: ${JSON.stringify(out.body)}`);
    return out.body as Json;
  }

  /**
   * Creates or replaces any object, chosen by its apiVersion and kind, as a POST or an
   * unconditional PUT would (built-in kinds allow those), synchronously and without HTTP.
   * Returns the stored object.
   */
  applyDirect(obj: Json): Json {
    const r = this.resourceOf(obj);
    const m = (obj['metadata'] ?? {}) as Json;
    // A namespaced object without a namespace goes to "default", as kubectl places it.
    const ns = r.namespaced ? (typeof m['namespace'] === 'string' ? m['namespace'] : 'default') : undefined;
    const name = typeof m['name'] === 'string' ? m['name'] : '';
    const cur = this.objects.get(FakeApiServer.id(r, ns ?? '', name));
    const body = structuredClone(obj);
    let out: { status: number; body: unknown };
    if (cur === undefined) out = this.create(r, ns, body);
    else {
      (body['metadata'] as Json)['resourceVersion'] = (cur['metadata'] as Json)['resourceVersion'];
      out = this.replace(r, ns ?? '', name, body);
    }
    if (out.status !== 200 && out.status !== 201) throw new Error(`applyDirect: ${JSON.stringify(out.body)}`);
    return out.body as Json;
  }

  /**
   * Serves `ns` (a core/v1 Namespace object, e.g. a recorded one) at
   * /api/v1/namespaces/<its name>, stored as given (its recorded metadata kept).
   */
  putNamespace(ns: Json): void {
    const name = (ns['metadata'] as Json | undefined)?.['name'];
    if (typeof name !== 'string' || name === '')
      throw new Error('putNamespace: the object has no metadata.name');
    const r = this.resourceOf({ apiVersion: 'v1', kind: 'Namespace' });
    this.objects.set(FakeApiServer.id(r, '', name), structuredClone(ns));
  }

  /** Deletes any object, as a DELETE would, synchronously and without HTTP. */
  deleteDirect(apiVersion: string, kind: string, name: string, namespace?: string): void {
    const r = this.resourceOf({ apiVersion, kind });
    const out = this.delete(r, r.namespaced ? (namespace ?? 'default') : '', name, undefined);
    if (out.status !== 200) throw new Error(`deleteDirect: ${JSON.stringify(out.body)}`);
  }

  /** The stored object, or undefined. */
  getDirect(apiVersion: string, kind: string, name: string, namespace?: string): Json | undefined {
    const r = this.resourceOf({ apiVersion, kind });
    const o = this.objects.get(FakeApiServer.id(r, r.namespaced ? (namespace ?? 'default') : '', name));
    return o === undefined ? undefined : structuredClone(o);
  }

  private resourceOf(obj: Json): Resource {
    const av = String(obj['apiVersion']);
    const [group, version] = av.includes('/') ? (av.split('/') as [string, string]) : ['', av];
    for (const r of this.resources.values())
      if (r.group === group && r.version === version && r.kind === obj['kind']) return r;
    throw new Error(`the fake API server does not serve ${av} ${String(obj['kind'])}`);
  }

  /** Forgets all history (an etcd compaction at the current revision). */
  compact(): void {
    this.compacted = this.rev;
    this.history = [];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.watchers]) {
      this.endWatcher(w);
      w.response.end();
    }
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const body = await readBody(req);
    const record = (status: number): void => {
      this.requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query,
        status,
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        accept: req.headers.accept,
        body,
      });
    };
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    // kube-apiserver answers unauthenticated requests 401 with reason Unauthorized.
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      record(401);
      return send(res, 401, failure(401, 'Unauthorized', 'Unauthorized'));
    }
    if (this.failures !== undefined) {
      const f = this.failures;
      if (--f.count <= 0) this.failures = undefined;
      record(f.code);
      if (f.code === 429) {
        res.setHeader('Retry-After', String(f.retryAfterSeconds));
        return send(
          res,
          429,
          failure(429, 'TooManyRequests', 'Too many requests, please try again later.', {
            retryAfterSeconds: f.retryAfterSeconds,
          }),
        );
      }
      return send(
        res,
        f.code,
        f.code === 503
          ? failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')
          : f.code === 403
            ? failure(403, 'Forbidden', `${url.pathname} is forbidden: injected fault`)
            : failure(f.code, 'InternalError', 'Internal error occurred: injected fault', {
                causes: [{ message: 'injected fault' }],
              }),
      );
    }
    const route = this.route(url.pathname);
    if (route === undefined) {
      record(404);
      // An unknown group/version/resource: the API server's generic 404.
      return send(res, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const { res: r, namespace, name, subresource } = route;
    const method = req.method ?? 'GET';
    const accept = req.headers.accept ?? '';
    let out: { status: number; body: unknown } | 'watch';
    const fields = parseFieldSelector(query['fieldSelector']);
    if (typeof fields === 'string') out = this.badRequest(fields);
    else if (subresource !== undefined) {
      // Only a Node's status subresource: GET reads the whole Node, PATCH changes its status.
      if (method === 'GET') out = this.get(r, '', name ?? '');
      else if (method === 'PATCH')
        out = this.patchStatus(r, name ?? '', req.headers['content-type'] ?? '', body);
      else out = this.notAllowed(method, r);
    } else if (
      method === 'GET' &&
      name === undefined &&
      (query['watch'] === 'true' || query['watch'] === '1')
    )
      out = 'watch';
    else if (method === 'GET' && name === undefined)
      out = this.list(
        r,
        namespace,
        fields,
        accept.includes('as=PartialObjectMetadataList;g=meta.k8s.io;v=v1'),
      );
    else if (method === 'GET' && name !== undefined) out = this.get(r, namespace ?? '', name);
    else if (method === 'POST' && name === undefined) out = this.create(r, namespace, body);
    else if (method === 'PUT' && name !== undefined) out = this.replace(r, namespace ?? '', name, body);
    else if (method === 'DELETE' && name !== undefined) out = this.delete(r, namespace ?? '', name, body);
    else out = this.notAllowed(method, r);
    if (out === 'watch') {
      record(200);
      return this.watch(
        r,
        namespace,
        typeof fields === 'string' ? [] : fields,
        accept.includes('as=PartialObjectMetadata;g=meta.k8s.io;v=v1'),
        query,
        res,
      );
    }
    record(out.status);
    send(res, out.status, out.body);
  }

  /**
   * `/apis/<group>/<version>/[namespaces/<ns>/]<plural>[/<name>]`, or `/api/v1/…` for the core
   * group; a namespaced path only for namespaced kinds; `nodes/<name>/status` for the one
   * subresource served.
   */
  private route(
    path: string,
  ):
    | { res: Resource; namespace: string | undefined; name: string | undefined; subresource?: 'status' }
    | undefined {
    const parts = path
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    let group: string;
    let rest: string[];
    if (parts[0] === 'api' && parts[1] !== undefined) {
      group = '';
      rest = parts.slice(1);
    } else if (parts[0] === 'apis' && parts[1] !== undefined && parts[2] !== undefined) {
      group = parts[1];
      rest = parts.slice(2);
    } else return undefined;
    const version = rest[0] ?? '';
    rest = rest.slice(1);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const r = this.resources.get(resourceKey(group, version, rest[0] ?? ''));
    if (r === undefined) return undefined;
    if (rest.length === 3 && rest[2] === 'status' && r.builtin && r.kind === 'Node')
      return { res: r, namespace: undefined, name: rest[1], subresource: 'status' };
    if (rest.length > 2) return undefined;
    if (namespace !== undefined && !r.namespaced) return undefined;
    // A namespaced kind's single object needs its namespace; its collection without one is the all-namespaces list.
    if (r.namespaced && namespace === undefined && rest.length === 2) return undefined;
    return { res: r, namespace, name: rest[1] };
  }

  /** Storage key: group, plural (core and tabby.dev both have `nodes`), namespace, name. */
  private static id(r: Resource, namespace: string, name: string): string {
    return `${FakeApiServer.prefix(r)}${namespace}/${name}`;
  }

  private static prefix(r: Resource): string {
    return `${r.group}/${r.plural}/`;
  }

  /** [errors.go] names a resource `<plural>.<group>`, or the bare plural in the core group. */
  private qualified(r: Resource): string {
    return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
  }

  /** StatusDetails: name, group (omitted for the core group) and kind (the plural, as NewNotFound sets it). */
  private details(r: Resource, name: string): NonNullable<StatusBody['details']> {
    return { name, ...(r.group === '' ? {} : { group: r.group }), kind: r.plural };
  }

  private notFound(r: Resource, name: string): { status: number; body: StatusBody } {
    return {
      status: 404,
      body: failure(404, 'NotFound', `${this.qualified(r)} "${name}" not found`, this.details(r, name)),
    };
  }

  private notAllowed(method: string, r: Resource): { status: number; body: StatusBody } {
    return {
      status: 405,
      body: failure(
        405,
        'MethodNotAllowed',
        `${method} is not supported on resources of kind "${this.qualified(r)}" by this stand-in`,
      ),
    };
  }

  private invalid(r: Resource, name: string, causes: StatusCause[]): { status: number; body: StatusBody } {
    // [errors.go] NewInvalid: "<Kind>.<group> "<name>" is invalid: <field>: <message>, …" (bare Kind in the core group)
    const list = causes.map((c) => `${c.field ?? ''}: ${c.message ?? ''}`);
    const qualifiedKind = r.group === '' ? r.kind : `${r.kind}.${r.group}`;
    return {
      status: 422,
      body: failure(
        422,
        'Invalid',
        `${qualifiedKind} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`,
        { name, ...(r.group === '' ? {} : { group: r.group }), kind: r.kind, causes },
      ),
    };
  }

  private badRequest(message: string): { status: number; body: StatusBody } {
    return { status: 400, body: failure(400, 'BadRequest', message) };
  }

  private list(
    r: Resource,
    namespace: string | undefined,
    fields: readonly FieldTerm[] = [],
    partial = false,
  ): { status: number; body: unknown } {
    const items: Json[] = [];
    // Keys in etcd order: namespace, then name.
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(FakeApiServer.prefix(r))).sort();
    for (const k of keys) {
      const o = this.objects.get(k)!;
      if (!matches(o, namespace, fields)) continue;
      const item = partial ? asPartial(o) : structuredClone(o);
      // [list-kind]: a built-in kind's list items carry no apiVersion and kind.
      if (r.builtin && !partial) {
        delete item['apiVersion'];
        delete item['kind'];
      }
      items.push(item);
    }
    // [concepts] "Efficient detection of changes": the list's metadata.resourceVersion starts a watch.
    return {
      status: 200,
      body: {
        apiVersion: partial ? 'meta.k8s.io/v1' : apiVersionOf(r),
        kind: partial ? 'PartialObjectMetadataList' : `${r.kind}List`,
        metadata: { resourceVersion: String(this.rev) },
        items,
      },
    };
  }

  private get(r: Resource, namespace: string, name: string): { status: number; body: unknown } {
    const o = this.objects.get(FakeApiServer.id(r, namespace, name));
    return o === undefined ? this.notFound(r, name) : { status: 200, body: o };
  }

  private checkBody(r: Resource, body: unknown): Json | { status: number; body: StatusBody } {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return this.badRequest('the body of the request was not a JSON object');
    const o = body as Json;
    if (o['apiVersion'] !== apiVersionOf(r) || o['kind'] !== r.kind)
      return this.badRequest(
        `the API version in the data (${String(o['apiVersion'])}) does not match the expected API version (${apiVersionOf(r)})`,
      );
    if (typeof o['metadata'] !== 'object' || o['metadata'] === null) o['metadata'] = {};
    // [secret]: stringData is write-only; its keys overwrite data's, base64-encoded.
    if (r.builtin && r.kind === 'Secret' && typeof o['stringData'] === 'object' && o['stringData'] !== null) {
      const data = { ...((o['data'] ?? {}) as Json) };
      for (const [k, v] of Object.entries(o['stringData'] as Json))
        if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
      o['data'] = data;
      delete o['stringData'];
    }
    return o;
  }

  private create(
    r: Resource,
    namespace: string | undefined,
    raw: unknown,
  ): { status: number; body: unknown } {
    const o = this.checkBody(r, raw);
    if ('status' in o && 'body' in o) return o as { status: number; body: StatusBody };
    const m = o['metadata'] as Json;
    const name = typeof m['name'] === 'string' ? m['name'] : '';
    if (name === '')
      return this.invalid(r, '', [
        {
          reason: 'FieldValueRequired',
          message: 'Required value: name or generateName is required',
          field: 'metadata.name',
        },
      ]);
    if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253)
      return this.invalid(r, name, [
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
          field: 'metadata.name',
        },
      ]);
    if (r.namespaced) {
      if (m['namespace'] !== undefined && m['namespace'] !== namespace)
        return this.badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      m['namespace'] = namespace;
    } else delete m['namespace']; // rest.BeforeCreate clears it for cluster-scoped kinds.
    // etcd3 store Create refuses an object that carries a resourceVersion (an internal error).
    if (m['resourceVersion'] !== undefined && m['resourceVersion'] !== '')
      return {
        status: 500,
        body: failure(
          500,
          'InternalError',
          'Internal error occurred: resourceVersion should not be set on objects to be created',
        ),
      };
    const id = FakeApiServer.id(r, namespace ?? '', name);
    if (this.objects.has(id))
      return {
        status: 409,
        body: failure(
          409,
          'AlreadyExists',
          `${this.qualified(r)} "${name}" already exists`,
          this.details(r, name),
        ),
      };
    const causes = this.opts.validate?.(o) ?? [];
    if (causes.length > 0) return this.invalid(r, name, causes);
    this.rev++;
    m['uid'] = randomUUID();
    m['creationTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (!r.builtin) m['generation'] = 1; // custom resources always carry one
    m['resourceVersion'] = String(this.rev);
    m['managedFields'] = [managedField(apiVersionOf(r))];
    this.objects.set(id, o);
    this.record('ADDED', r, namespace ?? '', o);
    return { status: 201, body: o };
  }

  private replace(
    r: Resource,
    namespace: string,
    name: string,
    raw: unknown,
  ): { status: number; body: unknown } {
    const o = this.checkBody(r, raw);
    if ('status' in o && 'body' in o) return o as { status: number; body: StatusBody };
    const m = o['metadata'] as Json;
    if (m['name'] !== name)
      return this.badRequest(
        `the name of the object (${String(m['name'])}) does not match the name on the URL (${name})`,
      );
    if (r.namespaced && m['namespace'] !== undefined && m['namespace'] !== namespace)
      return this.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    const id = FakeApiServer.id(r, namespace, name);
    const cur = this.objects.get(id);
    // Custom resources (and the built-in kinds served here) do not allow create-on-update: a PUT to a missing name is 404 ([store.go]).
    if (cur === undefined) return this.notFound(r, name);
    const curMeta = cur['metadata'] as Json;
    const rv = m['resourceVersion'];
    // [concepts] "Updates to existing resources": for a PUT "it is the client's responsibility
    // to specify the resourceVersion"; [store.go]: without one, a kind whose strategy does not
    // allow unconditional updates (custom resources) gets 422 "must be specified for an update".
    // Built-in kinds such as Secret and Service allow them: the update just happens.
    if ((rv === undefined || rv === '' || rv === '0') && r.builtin)
      m['resourceVersion'] = curMeta['resourceVersion'];
    else if (rv === undefined || rv === '' || rv === '0')
      return this.invalid(r, name, [
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: 0x0: must be specified for an update',
          field: 'metadata.resourceVersion',
        },
      ]);
    if (typeof m['resourceVersion'] !== 'string' || !/^[0-9]+$/.test(m['resourceVersion']))
      return this.badRequest(`invalid resource version: ${str(m['resourceVersion'])}`);
    // A stale resourceVersion: 409 Conflict with the optimistic-lock message ([store.go], [errors.go] NewConflict).
    if (m['resourceVersion'] !== curMeta['resourceVersion'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": ${OPTIMISTIC_LOCK_MSG}`,
          this.details(r, name),
        ),
      };
    if (m['uid'] !== undefined && m['uid'] !== curMeta['uid'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": Precondition failed: UID in precondition: ${str(m['uid'])}, UID in object meta: ${String(curMeta['uid'])}`,
          this.details(r, name),
        ),
      };
    const causes = this.opts.validate?.(o) ?? [];
    if (causes.length > 0) return this.invalid(r, name, causes);
    // System fields stay the server's: uid, creationTimestamp, generation (bumped when spec changes).
    this.rev++;
    if (r.namespaced) m['namespace'] = namespace;
    else delete m['namespace'];
    m['uid'] = curMeta['uid'];
    m['creationTimestamp'] = curMeta['creationTimestamp'];
    if (!r.builtin) {
      const gen = Number(curMeta['generation'] ?? 1);
      m['generation'] = JSON.stringify(o['spec']) === JSON.stringify(cur['spec']) ? gen : gen + 1;
    }
    m['resourceVersion'] = String(this.rev);
    m['managedFields'] = [managedField(apiVersionOf(r))];
    this.objects.set(id, o);
    this.record('MODIFIED', r, namespace, o);
    return { status: 200, body: o };
  }

  private delete(
    r: Resource,
    namespace: string,
    name: string,
    raw: unknown,
  ): { status: number; body: unknown } {
    const id = FakeApiServer.id(r, namespace, name);
    const cur = this.objects.get(id);
    if (cur === undefined) return this.notFound(r, name);
    const curMeta = cur['metadata'] as Json;
    const pre = (typeof raw === 'object' && raw !== null ? (raw as Json)['preconditions'] : undefined) as
      Json | undefined;
    // DeleteOptions.preconditions: a mismatch is a 409 Conflict "Precondition failed" (etcd3 store Delete).
    if (pre?.['uid'] !== undefined && pre['uid'] !== curMeta['uid'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": Precondition failed: UID in precondition: ${str(pre['uid'])}, UID in object meta: ${String(curMeta['uid'])}`,
          this.details(r, name),
        ),
      };
    if (pre?.['resourceVersion'] !== undefined && pre['resourceVersion'] !== curMeta['resourceVersion'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": Precondition failed: ResourceVersion in precondition: ${str(pre['resourceVersion'])}, ResourceVersion in object meta: ${String(curMeta['resourceVersion'])}`,
          this.details(r, name),
        ),
      };
    this.objects.delete(id);
    this.rev++;
    // The DELETED event carries the last state with the deletion's resourceVersion.
    const gone = structuredClone(cur);
    (gone['metadata'] as Json)['resourceVersion'] = String(this.rev);
    this.record('DELETED', r, namespace, gone);
    // [crd-etcd]: custom resources answer a delete with a success Status naming the object.
    return {
      status: 200,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { ...this.details(r, name), uid: curMeta['uid'] },
      },
    };
  }

  /**
   * PATCH nodes/<name>/status: a strategic merge patch ([smp]; conditions and addresses merge
   * by `type`, other lists are replaced, null removes a field), a JSON merge patch (RFC 7386)
   * or a JSON patch (RFC 6902: add, remove, replace, test), of which only `status` is kept:
   * the status strategy keeps the spec and metadata of the stored Node. Answers with the
   * whole Node, as client-go's PatchStatus reads it.
   */
  private patchStatus(
    r: Resource,
    name: string,
    contentType: string,
    raw: unknown,
  ): { status: number; body: unknown } {
    const type = contentType.split(';')[0]!.trim();
    const kinds = [
      'application/strategic-merge-patch+json',
      'application/merge-patch+json',
      'application/json-patch+json',
    ];
    if (!kinds.includes(type))
      return {
        status: 415,
        body: failure(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: ${kinds.join(', ')} (this stand-in has no apply-patch)`,
        ),
      };
    const id = FakeApiServer.id(r, '', name);
    const cur = this.objects.get(id);
    if (cur === undefined) return this.notFound(r, name);
    let patched: Json;
    if (type === 'application/json-patch+json') {
      if (!Array.isArray(raw)) return this.badRequest('a JSON patch is an array of operations');
      const out = jsonPatch(cur, raw);
      if (typeof out === 'string')
        return this.invalid(r, name, [{ reason: 'FieldValueInvalid', message: out, field: 'patch' }]);
      patched = out;
    } else {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        return this.badRequest('the body of the request was not a JSON object');
      const patch = raw as Json;
      const prv = (patch['metadata'] as Json | undefined)?.['resourceVersion'];
      if (prv !== undefined && prv !== (cur['metadata'] as Json)['resourceVersion'])
        return {
          status: 409,
          body: failure(
            409,
            'Conflict',
            `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": ${OPTIMISTIC_LOCK_MSG}`,
            this.details(r, name),
          ),
        };
      patched = structuredClone(cur);
      if (patch['status'] !== undefined)
        patched['status'] = mergePatch(
          cur['status'],
          patch['status'],
          type === 'application/strategic-merge-patch+json' ? ['status'] : undefined,
        );
    }
    const next = structuredClone(cur);
    if (patched['status'] === undefined) delete next['status'];
    else next['status'] = patched['status'];
    this.rev++;
    (next['metadata'] as Json)['resourceVersion'] = String(this.rev);
    this.objects.set(id, next);
    this.record('MODIFIED', r, '', next);
    return { status: 200, body: next };
  }

  private record(type: Change['type'], r: Resource, namespace: string, object: Json): void {
    const c: Change = { rev: this.rev, type, res: r, namespace, object: structuredClone(object) };
    this.history.push(c);
    this.trimHistory();
    for (const w of this.watchers) if (this.wants(w, c)) this.sendEvent(w, c.type, c.object, c.rev);
  }

  private trimHistory(): void {
    const extra = this.history.length - this.historyWindow;
    if (extra > 0) {
      const dropped = this.history.splice(0, extra);
      this.compacted = Math.max(this.compacted, dropped[dropped.length - 1]!.rev);
    }
  }

  private wants(w: Watcher, c: Change): boolean {
    return c.res === w.res && matches(c.object, w.namespace, w.fields);
  }

  private sendEvent(w: Watcher, type: string, object: Json, rev: number): void {
    w.sent = Math.max(w.sent, rev);
    // One JSON document per line on a chunked response ([concepts] "Efficient detection of changes").
    // Watch events carry apiVersion and kind, built-in kinds too; [partial] when asked for.
    w.response.write(`${JSON.stringify({ type, object: w.partial ? asPartial(object) : object })}\n`);
  }

  private watch(
    r: Resource,
    namespace: string | undefined,
    fields: readonly FieldTerm[],
    partial: boolean,
    query: Record<string, string>,
    res: ServerResponse,
  ): void {
    const rvParam = query['resourceVersion'];
    const w: Watcher = {
      res: r,
      namespace,
      fields,
      partial,
      response: res,
      bookmarks: query['allowWatchBookmarks'] === 'true',
      timers: [],
      sent: 0,
    };
    const from = rvParam === undefined || rvParam === '' ? 0 : Number(rvParam);
    if (!Number.isInteger(from) || from < 0) {
      send(res, 400, failure(400, 'BadRequest', `invalid resource version: ${rvParam}`));
      return;
    }
    // [concepts] "410 Gone responses": history older than the server keeps ends the watch
    // with an ERROR event carrying a 410 Expired Status ([errors.go] NewResourceExpired,
    // etcd3 watcher's "too old resource version: <requested> (<oldest>)"), then the stream ends.
    if (from !== 0 && from < this.compacted) {
      const gone = failure(410, 'Expired', `too old resource version: ${from} (${this.compacted + 1})`);
      if (this.expiredAs === 'http') return send(res, 410, gone);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (from === 0) {
      // [concepts] "Resource versions", watch: unset / "0" is "Get State and Start at Most
      // Recent/Any": synthetic ADDED events for every existing object, then changes.
      for (const [k, o] of [...this.objects.entries()].sort(([a], [b]) => (a < b ? -1 : 1)))
        if (k.startsWith(FakeApiServer.prefix(r)) && matches(o, namespace, fields))
          this.sendEvent(w, 'ADDED', structuredClone(o), this.rev);
      w.sent = this.rev;
    } else {
      // "Start at Exact": every change after `from`, no synthetic events. (A future
      // revision is served the same way; kube-apiserver would wait for it.)
      for (const c of this.history)
        if (c.rev > from && this.wants(w, c)) this.sendEvent(w, c.type, c.object, c.rev);
      w.sent = Math.max(w.sent, from);
    }
    // A client that went away while the request waited (latencyMs), or a server closed
    // meanwhile: no watcher, so no timers left running.
    if (this.closed || res.destroyed || res.socket === null || res.socket.destroyed) {
      res.destroy();
      return;
    }
    this.watchers.add(w);
    res.on('close', () => this.endWatcher(w));
    if (w.bookmarks) {
      // [concepts] "Watch bookmarks": only resourceVersion is set on the object, of the requested kind.
      w.timers.push(
        setInterval(() => {
          w.sent = Math.max(w.sent, this.rev);
          res.write(
            `${JSON.stringify({
              type: 'BOOKMARK',
              object: {
                kind: partial ? 'PartialObjectMetadata' : r.kind,
                apiVersion: partial ? 'meta.k8s.io/v1' : apiVersionOf(r),
                metadata: { resourceVersion: String(this.rev) },
              },
            })}\n`,
          );
        }, this.opts.bookmarkIntervalMs ?? 1000),
      );
    }
    const timeout = Number(query['timeoutSeconds']);
    if (Number.isFinite(timeout) && timeout > 0)
      // timeoutSeconds ends the watch cleanly; the client reconnects from its last resourceVersion.
      w.timers.push(
        setTimeout(() => {
          this.endWatcher(w);
          res.end();
        }, timeout * 1000),
      );
  }

  private endWatcher(w: Watcher): void {
    for (const t of w.timers) clearTimeout(t);
    w.timers.length = 0;
    this.watchers.delete(w);
  }
}

/** RFC 6902 add / remove / replace / test on a copy of `doc`; a message when an operation fails. */
function jsonPatch(doc: Json, ops: readonly unknown[]): Json | string {
  const out = structuredClone(doc);
  for (const op of ops) {
    if (typeof op !== 'object' || op === null) return 'an operation is not an object';
    const { op: kind, path, value } = op as { op?: unknown; path?: unknown; value?: unknown };
    if (typeof path !== 'string' || !path.startsWith('/')) return `bad path ${JSON.stringify(path)}`;
    // RFC 6901: "~1" is "/", "~0" is "~".
    const keys = path
      .slice(1)
      .split('/')
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop()!;
    let parent: unknown = out;
    for (const k of keys) {
      parent = Array.isArray(parent)
        ? parent[Number(k)]
        : typeof parent === 'object' && parent !== null
          ? (parent as Json)[k]
          : undefined;
      if (typeof parent !== 'object' || parent === null) return `path ${path}: ${k} does not exist`;
    }
    const p = parent as Json;
    switch (kind) {
      case 'add':
      case 'replace':
        if (kind === 'replace' && !(last in p)) return `replace ${path}: it does not exist`;
        if (Array.isArray(p))
          p.splice(last === '-' ? p.length : Number(last), kind === 'replace' ? 1 : 0, value);
        else p[last] = structuredClone(value);
        break;
      case 'remove':
        if (!(last in p)) return `remove ${path}: it does not exist`;
        if (Array.isArray(p)) p.splice(Number(last), 1);
        else delete p[last];
        break;
      case 'test':
        if (JSON.stringify(p[last]) !== JSON.stringify(value)) return `test ${path}: the value differs`;
        break;
      default:
        return `operation ${JSON.stringify(kind)} is not implemented by this stand-in`;
    }
  }
  return out;
}

/** [smp] list fields of a Node that merge by a key instead of being replaced. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  'status.conditions': 'type',
  'status.addresses': 'type',
};

/**
 * RFC 7386 merge of `patch` into `target` (objects merge, null removes, anything else
 * replaces); with `path` (strategic merge), the lists MERGE_KEYS names merge item by item on
 * their key, the patch's items replacing (merged into) the stored ones with the same key.
 */
function mergePatch(target: unknown, patch: unknown, path: readonly string[] | undefined): unknown {
  const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
  const key = path === undefined ? undefined : MERGE_KEYS[path.join('.')];
  if (key !== undefined && Array.isArray(patch)) {
    const out = Array.isArray(target) ? target.map((x) => structuredClone(x) as unknown) : [];
    for (const item of patch) {
      const i = isObj(item) ? out.findIndex((x) => isObj(x) && x[key] === item[key]) : -1;
      if (i >= 0) out[i] = mergePatch(out[i], item, [...(path ?? []), '[]']);
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (!isObj(patch)) return structuredClone(patch);
  const out: Json = isObj(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, path === undefined ? undefined : [...path, k]);
  }
  return out;
}

/** Whether an object is in the namespace (undefined: any) and satisfies every field selector term. */
function matches(o: Json, namespace: string | undefined, fields: readonly FieldTerm[]): boolean {
  const m = (o['metadata'] ?? {}) as Json;
  const ns = typeof m['namespace'] === 'string' ? m['namespace'] : '';
  if (namespace !== undefined && ns !== namespace) return false;
  return fields.every((t) => ((t.field === 'metadata.name' ? m['name'] : ns) === t.value) === t.equal);
}

/** [fields]: `a=b,c!=d`; only metadata.name and metadata.namespace; a message for a 400 otherwise. */
function parseFieldSelector(text: string | undefined): FieldTerm[] | string {
  if (text === undefined || text === '') return [];
  const out: FieldTerm[] = [];
  for (const term of text.split(',')) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term.trim());
    if (m === null) return `invalid field selector: ${JSON.stringify(term)}`;
    const field = m[1]!.trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace')
      return `field label not supported: ${field}`;
    out.push({ field, value: m[3]!.trim(), equal: m[2] !== '!=' });
  }
  return out;
}

/** [partial]: the object as PartialObjectMetadata (its metadata only). */
function asPartial(o: Json): Json {
  return {
    kind: 'PartialObjectMetadata',
    apiVersion: 'meta.k8s.io/v1',
    metadata: structuredClone((o['metadata'] ?? {}) as Json),
  };
}

/** A value as it appears in a message: strings bare, anything else as JSON. */
function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function managedField(apiVersion: string): Json {
  return {
    manager: 'tabby',
    operation: 'Update',
    apiVersion,
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:spec': {} },
  };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) parts.push(c);
  const text = Buffer.concat(parts).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
