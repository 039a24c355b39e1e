// The etcd v3 backend. An object's resourceVersion is its key's mod_revision and a list's
// revision is the response header's, so etcd's own transactions do the compare-and-swap:
// every write is one round trip, and a failed compare reads the key in the same
// transaction to tell NotFound from Conflict.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { handleWhen, noop, retry } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import type { IKeyValue, IOptions, ITxnRequest, ITxnResponse } from 'etcd3';
import type { Kind } from '../../resources/kinds.js';
import type { ObjectMeta, ResourceKey } from '../../resources/meta.js';
import { keyOf } from '../../resources/meta.js';
import type { AnyResource, Backend, ListResult, Watch, WatchOptions } from '../../store/backend.js';
import {
  AlreadyExistsError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  UnavailableError,
} from '../../store/errors.js';
import { EventQueue } from '../../store/event-queue.js';
import { decode, decodeKv, encode } from './codec.js';
import { KeyLayout } from './keys.js';
import type { KeyRange } from './keys.js';
import { EtcdWatch, message } from './watch.js';
import type { WatchContext } from './watch.js';

export interface EtcdBackendOptions {
  /** Client URLs, e.g. `http://10.0.0.1:2379`; all `https://` when `tls` is given. */
  readonly endpoints: readonly string[];
  /** Key prefix; default `/tabby/v1`. */
  readonly prefix?: string;
  /** PEM files: the CA that signed etcd's certificate, and a client certificate and key. */
  readonly tls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
  readonly auth?: { readonly username: string; readonly password: string };
  /**
   * The longest one call waits for etcd, connecting included, before it fails with
   * UnavailableError; also how long a watch stream may take to be created. Default 5000.
   */
  readonly dialTimeoutMs?: number;
  /** Watch reconnection backoff: doubles from initialMs up to maxMs, with jitter. */
  readonly watchBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** Objects per range request when listing (a list is pinned to its first page's revision). */
const PAGE = 500;
const REVISION = /^[1-9][0-9]*$/;

export class EtcdBackend implements Backend {
  readonly type = 'etcd';
  readonly layout: KeyLayout;
  private readonly client: Etcd3;
  private readonly where: string;
  private readonly watches = new Set<EtcdWatch>();
  private readonly watchContext: WatchContext;
  private closed = false;

  constructor(opts: EtcdBackendOptions) {
    if (opts.endpoints.length === 0) throw new Error('etcd backend: no endpoints');
    const secure = opts.endpoints.filter((e) => e.startsWith('https://')).length;
    if (secure !== 0 && secure !== opts.endpoints.length)
      throw new Error('etcd backend: endpoints mix http:// and https://');
    if (opts.tls !== undefined && secure === 0)
      throw new Error('etcd backend: TLS files are given but the endpoints are http://');
    if ((opts.tls?.certFile === undefined) !== (opts.tls?.keyFile === undefined))
      throw new Error('etcd backend: a client certificate needs both certFile and keyFile');
    this.layout = new KeyLayout(opts.prefix);
    this.where = opts.endpoints.join(',');
    const timeout = opts.dialTimeoutMs ?? 5000;
    const hosts = [...opts.endpoints];
    const options: IOptions = {
      hosts,
      dialTimeout: timeout,
      // etcd3 does not apply dialTimeout itself and gRPC has no connect timeout: a deadline
      // on every unary call bounds the wait for an unreachable etcd. Streams have none.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      grpcOptions: {
        'grpc.max_receive_message_length': 64 << 20,
        // etcd's default keepalive policy refuses pings more often than every 5 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2_000,
      },
      faultHandling: {
        // No circuit breaker: it would keep failing calls for seconds after etcd is back.
        host: () => noop,
        // A failed call tries each other endpoint once; callers retry beyond that.
        global:
          hosts.length > 1 ? retry(handleWhen(isRecoverableError), { maxAttempts: hosts.length - 1 }) : noop,
      },
    };
    if (opts.tls !== undefined) {
      const { caFile, certFile, keyFile } = opts.tls;
      options.credentials = {
        rootCertificate: readFileSync(caFile),
        ...(certFile !== undefined && keyFile !== undefined
          ? { certChain: readFileSync(certFile), privateKey: readFileSync(keyFile) }
          : {}),
      };
    }
    if (opts.auth !== undefined)
      options.auth = { username: opts.auth.username, password: opts.auth.password };
    this.client = new Etcd3(options);
    this.watchContext = {
      client: this.client,
      layout: this.layout,
      where: this.where,
      dialTimeoutMs: timeout,
      backoff: { initialMs: opts.watchBackoff?.initialMs ?? 100, maxMs: opts.watchBackoff?.maxMs ?? 5_000 },
      list: (kind, namespace) => this.rangeAll(kind, this.layout.range(kind, namespace)),
    };
  }

  async get(k: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    const key = this.layout.key(k);
    const kv = await this.read(key, 'get');
    return kv === undefined ? undefined : decodeKv(k, kv);
  }

  list(kind: Kind, opts: { readonly namespace?: string } = {}): Promise<ListResult> {
    return this.rangeAll(kind, this.layout.range(kind, opts.namespace));
  }

  watch(kind: Kind, opts: WatchOptions = {}): Watch {
    if (this.closed) {
      const q = new EventQueue<AnyResource>();
      q.close();
      return q;
    }
    const w: EtcdWatch = new EtcdWatch(this.watchContext, kind, opts, () => this.watches.delete(w));
    this.watches.add(w);
    return w.queue;
  }

  async create(obj: AnyResource): Promise<AnyResource> {
    const k = keyOf(obj);
    const key = this.layout.key(k);
    const value = encode(withMeta(obj, { uid: randomUUID(), creationTimestamp: new Date().toISOString() }));
    const res = await this.txn('create', {
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key, value } }],
    });
    if (!res.succeeded) throw new AlreadyExistsError(k);
    return decode(k, value, res.header.revision);
  }

  async update(obj: AnyResource): Promise<AnyResource> {
    const k = keyOf(obj);
    const key = this.layout.key(k);
    const rv = obj.metadata.resourceVersion;
    let { uid, creationTimestamp } = obj.metadata;
    if (rv === undefined || !REVISION.test(rv)) throw await this.casFailure(k, key, rv);
    if (uid === undefined || creationTimestamp === undefined) {
      // The caller did not send back the identity it read: take it from the stored object
      // (an extra round trip, and the compare below still guards the write).
      const cur = await this.read(key, 'update');
      if (cur === undefined) throw new NotFoundError(k);
      if (cur.mod_revision !== rv) throw new ConflictError(k, rv, cur.mod_revision);
      ({ uid, creationTimestamp } = decodeKv(k, cur).metadata);
    }
    const value = encode(withMeta(obj, { uid, creationTimestamp }));
    const res = await this.txn('update', {
      compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: rv }],
      success: [{ request_put: { key, value } }],
      failure: [{ request_range: { key, keys_only: true } }],
    });
    if (!res.succeeded) throw failedCompare(k, rv, res);
    return decode(k, value, res.header.revision);
  }

  async delete(k: ResourceKey<Kind>, opts: { readonly resourceVersion?: string } = {}): Promise<AnyResource> {
    const key = this.layout.key(k);
    const rv = opts.resourceVersion;
    if (rv === undefined) {
      let prev: IKeyValue | undefined;
      try {
        prev = (await this.client.kv.deleteRange({ key, prev_kv: true })).prev_kvs[0];
      } catch (e) {
        throw this.unavailable('delete', e);
      }
      if (prev === undefined) throw new NotFoundError(k);
      return decodeKv(k, prev);
    }
    if (!REVISION.test(rv)) throw await this.casFailure(k, key, rv);
    const res = await this.txn('delete', {
      compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: rv }],
      success: [{ request_delete_range: { key, prev_kv: true } }],
      failure: [{ request_range: { key, keys_only: true } }],
    });
    if (!res.succeeded) throw failedCompare(k, rv, res);
    const prev = res.responses[0]?.response_delete_range.prev_kvs[0];
    // The compare saw the key at rv, so the delete in the same transaction removed it.
    if (prev === undefined)
      throw new UnavailableError(`etcd ${this.where}: delete returned no previous value`);
    return decodeKv(k, prev);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.queue.close();
    this.client.close();
    return Promise.resolve();
  }

  /** Every object in `range`, in pages pinned to the first page's revision. */
  private async rangeAll(kind: Kind, range: KeyRange): Promise<ListResult> {
    for (;;) {
      const items: AnyResource[] = [];
      let revision: string | undefined;
      let start = range.start;
      try {
        for (;;) {
          const res = await this.client.kv.range({
            key: start,
            range_end: range.end,
            limit: PAGE,
            ...(revision === undefined ? {} : { revision }),
          });
          revision ??= res.header.revision;
          for (const kv of res.kvs) {
            const k = this.layout.parse(kind, kv.key);
            if (k === undefined) continue; // not an object key (deeper path), never written by us
            items.push(decodeKv(k, kv));
          }
          const lastKey = res.kvs.at(-1)?.key;
          if (!res.more || lastKey === undefined) return { items, revision };
          start = Buffer.concat([lastKey, Buffer.from([0])]);
        }
      } catch (e) {
        // Compacted between pages: start over at the current revision.
        if (revision !== undefined && /required revision has been compacted/.test(message(e))) continue;
        if (e instanceof DatastoreError) throw e;
        throw this.unavailable('list', e);
      }
    }
  }

  private async read(key: Buffer, op: string): Promise<IKeyValue | undefined> {
    try {
      return (await this.client.kv.range({ key })).kvs[0];
    } catch (e) {
      throw this.unavailable(op, e);
    }
  }

  private async txn(op: string, req: ITxnRequest): Promise<ITxnResponse> {
    try {
      return await this.client.kv.txn(req);
    } catch (e) {
      throw this.unavailable(op, e);
    }
  }

  /** Why a compare-and-swap with a resourceVersion that cannot match fails: read and say. */
  private async casFailure(
    k: ResourceKey<Kind>,
    key: Buffer,
    rv: string | undefined,
  ): Promise<DatastoreError> {
    const cur = await this.read(key, 'update');
    return cur === undefined ? new NotFoundError(k) : new ConflictError(k, rv, cur.mod_revision);
  }

  private unavailable(op: string, e: unknown): UnavailableError {
    return new UnavailableError(`etcd ${this.where}: ${op} failed: ${message(e)}`, { cause: e });
  }
}

function withMeta(
  obj: AnyResource,
  id: { uid: string | undefined; creationTimestamp: string | undefined },
): AnyResource {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ts, ...rest } = obj.metadata;
  const metadata: ObjectMeta = { ...rest };
  if (id.uid !== undefined) metadata.uid = id.uid;
  if (id.creationTimestamp !== undefined) metadata.creationTimestamp = id.creationTimestamp;
  return { ...obj, metadata };
}

/** A failed mod_revision compare: the failure branch read the key (keys only). */
function failedCompare(k: ResourceKey<Kind>, rv: string, res: ITxnResponse): DatastoreError {
  const cur = res.responses[0]?.response_range.kvs[0];
  return cur === undefined ? new NotFoundError(k) : new ConflictError(k, rv, cur.mod_revision);
}
