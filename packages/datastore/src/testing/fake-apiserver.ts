// An in-process stand-in for kube-apiserver serving Tabby's custom resources (tabby.dev/v1),
// for the Kubernetes backend's tests. No real API server can run on the test machine, so this
// follows the documented API semantics for the calls the backend makes; each branch names
// the behaviour it follows. Sources:
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
// Besides the custom resources, it answers GET /api/v1/namespaces/<name> for the core/v1
// Namespaces a test puts there (putNamespace), as the CNI plugin reads a pod's namespace
// labels. What it does not do: schemas (a `validate` hook stands in), field/label selectors,
// paging, PATCH, finalizers, generateName, the watch cache's "not older than" reads, protobuf.
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

interface Resource {
  readonly kind: Kind;
  readonly plural: string;
  readonly namespaced: boolean;
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
  token: string | undefined;
  readonly requests: RequestRecord[] = [];
  private readonly resources = new Map<string, Resource>();
  /** core/v1 Namespaces by name (read-only: only GET of one is served). */
  private readonly namespaces = new Map<string, Json>();

  private constructor(private readonly opts: FakeApiServerOptions) {
    this.rev = opts.startRevision ?? 1000;
    this.compacted = this.rev;
    this.historyWindow = opts.historyWindow ?? 1000;
    this.token = opts.token;
    for (const kind of KINDS) {
      const i = KIND_INFO[kind];
      this.resources.set(i.plural, { kind, plural: i.plural, namespaced: i.namespaced });
    }
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

  /** The next `count` requests fail with `code` (500, 503 or 429; a 429 carries Retry-After). */
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
    const r = this.resources.get(KIND_INFO[kind].plural)!;
    const ns = (obj['metadata'] as Json | undefined)?.['namespace'];
    const out = this.create(r, typeof ns === 'string' ? ns : undefined, structuredClone(obj));
    if (out.status !== 201) throw new Error(`createDirect: ${JSON.stringify(out.body)}`);
    return out.body as Json;
  }

  /** Serves `ns` (a core/v1 Namespace object, e.g. a recorded one) at /api/v1/namespaces/<its name>. */
  putNamespace(ns: Json): void {
    const name = (ns['metadata'] as Json | undefined)?.['name'];
    if (typeof name !== 'string' || name === '')
      throw new Error('putNamespace: the object has no metadata.name');
    this.namespaces.set(name, structuredClone(ns));
  }

  /** Forgets all history (an etcd compaction at the current revision). */
  compact(): void {
    this.compacted = this.rev;
    this.history = [];
  }

  async close(): Promise<void> {
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
    const record = (status: number): void => {
      this.requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query,
        status,
        authorization: req.headers.authorization,
      });
    };
    const body = await readBody(req);
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
          : failure(f.code, 'InternalError', 'Internal error occurred: injected fault', {
              causes: [{ message: 'injected fault' }],
            }),
      );
    }
    const core = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(url.pathname);
    if (core !== null && (req.method ?? 'GET') === 'GET') {
      const name = decodeURIComponent(core[1]!);
      const ns = this.namespaces.get(name);
      record(ns === undefined ? 404 : 200);
      // [errors.go] NewNotFound of the core group: `namespaces "<name>" not found`.
      return ns === undefined
        ? send(
            res,
            404,
            failure(404, 'NotFound', `namespaces "${name}" not found`, { name, kind: 'namespaces' }),
          )
        : send(res, 200, ns);
    }
    const route = this.route(url.pathname);
    if (route === undefined) {
      record(404);
      // An unknown group/version/resource: the API server's generic 404.
      return send(res, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const { res: r, namespace, name } = route;
    const method = req.method ?? 'GET';
    let out: { status: number; body: unknown } | 'watch';
    if (method === 'GET' && name === undefined && (query['watch'] === 'true' || query['watch'] === '1'))
      out = 'watch';
    else if (method === 'GET' && name === undefined) out = this.list(r, namespace);
    else if (method === 'GET' && name !== undefined) out = this.get(r, namespace ?? '', name);
    else if (method === 'POST' && name === undefined) out = this.create(r, namespace, body);
    else if (method === 'PUT' && name !== undefined) out = this.replace(r, namespace ?? '', name, body);
    else if (method === 'DELETE' && name !== undefined) out = this.delete(r, namespace ?? '', name, body);
    else
      out = {
        status: 405,
        body: failure(
          405,
          'MethodNotAllowed',
          `${method} is not supported on resources of kind "${r.plural}.${GROUP}"`,
        ),
      };
    if (out === 'watch') {
      record(200);
      return this.watch(r, namespace, query, res);
    }
    record(out.status);
    send(res, out.status, out.body);
  }

  /** `/apis/tabby.dev/v1/[namespaces/<ns>/]<plural>[/<name>]`; a namespaced path only for namespaced kinds. */
  private route(
    path: string,
  ): { res: Resource; namespace: string | undefined; name: string | undefined } | undefined {
    const parts = path
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    if (parts[0] !== 'apis' || parts[1] !== GROUP || parts[2] !== VERSION) return undefined;
    let rest = parts.slice(3);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const r = this.resources.get(rest[0] ?? '');
    if (r === undefined || rest.length > 2) return undefined;
    if (namespace !== undefined && !r.namespaced) return undefined;
    // A namespaced kind's single object needs its namespace; its collection without one is the all-namespaces list.
    if (r.namespaced && namespace === undefined && rest.length === 2) return undefined;
    return { res: r, namespace, name: rest[1] };
  }

  private static id(r: Resource, namespace: string, name: string): string {
    return `${r.plural}/${namespace}/${name}`;
  }

  private qualified(r: Resource): string {
    return `${r.plural}.${GROUP}`;
  }

  private notFound(r: Resource, name: string): { status: number; body: StatusBody } {
    return {
      status: 404,
      body: failure(404, 'NotFound', `${this.qualified(r)} "${name}" not found`, {
        name,
        group: GROUP,
        kind: r.plural,
      }),
    };
  }

  private invalid(r: Resource, name: string, causes: StatusCause[]): { status: number; body: StatusBody } {
    // [errors.go] NewInvalid: "<Kind>.<group> "<name>" is invalid: <field>: <message>, …"
    const list = causes.map((c) => `${c.field ?? ''}: ${c.message ?? ''}`);
    return {
      status: 422,
      body: failure(
        422,
        'Invalid',
        `${r.kind}.${GROUP} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`,
        { name, group: GROUP, kind: r.kind, causes },
      ),
    };
  }

  private badRequest(message: string): { status: number; body: StatusBody } {
    return { status: 400, body: failure(400, 'BadRequest', message) };
  }

  private list(r: Resource, namespace: string | undefined): { status: number; body: unknown } {
    const items: Json[] = [];
    // Keys in etcd order: namespace, then name.
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(`${r.plural}/`)).sort();
    for (const k of keys) {
      const o = this.objects.get(k)!;
      if (namespace === undefined || (o['metadata'] as Json)['namespace'] === namespace)
        items.push(structuredClone(o));
    }
    // [concepts] "Efficient detection of changes": the list's metadata.resourceVersion starts a watch.
    return {
      status: 200,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: `${r.kind}List`,
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
    if (o['apiVersion'] !== `${GROUP}/${VERSION}` || o['kind'] !== r.kind)
      return this.badRequest(
        `the API version in the data (${String(o['apiVersion'])}) does not match the expected API version (${GROUP}/${VERSION})`,
      );
    if (typeof o['metadata'] !== 'object' || o['metadata'] === null) o['metadata'] = {};
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
        body: failure(409, 'AlreadyExists', `${this.qualified(r)} "${name}" already exists`, {
          name,
          group: GROUP,
          kind: r.plural,
        }),
      };
    const causes = this.opts.validate?.(o) ?? [];
    if (causes.length > 0) return this.invalid(r, name, causes);
    this.rev++;
    m['uid'] = randomUUID();
    m['creationTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    m['generation'] = 1;
    m['resourceVersion'] = String(this.rev);
    m['managedFields'] = [managedField()];
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
    // Custom resources do not allow create-on-update: a PUT to a missing name is 404 ([store.go]).
    if (cur === undefined) return this.notFound(r, name);
    const curMeta = cur['metadata'] as Json;
    const rv = m['resourceVersion'];
    // [concepts] "Updates to existing resources": for a PUT "it is the client's responsibility
    // to specify the resourceVersion"; [store.go]: without one, a kind whose strategy does not
    // allow unconditional updates (custom resources) gets 422 "must be specified for an update".
    if (rv === undefined || rv === '' || rv === '0')
      return this.invalid(r, name, [
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: 0x0: must be specified for an update',
          field: 'metadata.resourceVersion',
        },
      ]);
    if (typeof rv !== 'string' || !/^[0-9]+$/.test(rv))
      return this.badRequest(`invalid resource version: ${str(rv)}`);
    // A stale resourceVersion: 409 Conflict with the optimistic-lock message ([store.go], [errors.go] NewConflict).
    if (rv !== curMeta['resourceVersion'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": ${OPTIMISTIC_LOCK_MSG}`,
          {
            name,
            group: GROUP,
            kind: r.plural,
          },
        ),
      };
    if (m['uid'] !== undefined && m['uid'] !== curMeta['uid'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": Precondition failed: UID in precondition: ${str(m['uid'])}, UID in object meta: ${String(curMeta['uid'])}`,
          { name, group: GROUP, kind: r.plural },
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
    const gen = Number(curMeta['generation'] ?? 1);
    m['generation'] = JSON.stringify(o['spec']) === JSON.stringify(cur['spec']) ? gen : gen + 1;
    m['resourceVersion'] = String(this.rev);
    m['managedFields'] = [managedField()];
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
          { name, group: GROUP, kind: r.plural },
        ),
      };
    if (pre?.['resourceVersion'] !== undefined && pre['resourceVersion'] !== curMeta['resourceVersion'])
      return {
        status: 409,
        body: failure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${this.qualified(r)} "${name}": Precondition failed: ResourceVersion in precondition: ${str(pre['resourceVersion'])}, ResourceVersion in object meta: ${String(curMeta['resourceVersion'])}`,
          { name, group: GROUP, kind: r.plural },
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
        details: { name, group: GROUP, kind: r.plural, uid: curMeta['uid'] },
      },
    };
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
    return c.res === w.res && (w.namespace === undefined || c.namespace === w.namespace);
  }

  private sendEvent(w: Watcher, type: string, object: unknown, rev: number): void {
    w.sent = Math.max(w.sent, rev);
    // One JSON document per line on a chunked response ([concepts] "Efficient detection of changes").
    w.response.write(`${JSON.stringify({ type, object })}\n`);
  }

  private watch(
    r: Resource,
    namespace: string | undefined,
    query: Record<string, string>,
    res: ServerResponse,
  ): void {
    const rvParam = query['resourceVersion'];
    const w: Watcher = {
      res: r,
      namespace,
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
      for (const o of (this.list(r, namespace).body as { items: Json[] }).items)
        this.sendEvent(w, 'ADDED', o, this.rev);
      w.sent = this.rev;
    } else {
      // "Start at Exact": every change after `from`, no synthetic events. (A future
      // revision is served the same way; kube-apiserver would wait for it.)
      for (const c of this.history)
        if (c.rev > from && this.wants(w, c)) this.sendEvent(w, c.type, c.object, c.rev);
      w.sent = Math.max(w.sent, from);
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
                kind: r.kind,
                apiVersion: `${GROUP}/${VERSION}`,
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

/** A value as it appears in a message: strings bare, anything else as JSON. */
function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function managedField(): Json {
  return {
    manager: 'tabby',
    operation: 'Update',
    apiVersion: `${GROUP}/${VERSION}`,
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
