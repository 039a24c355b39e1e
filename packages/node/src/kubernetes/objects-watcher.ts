// The Kubernetes objects the BGP configuration reads beyond the datastore, kept current from
// the API server: the password Secrets, Services and EndpointSlices (service advertisement),
// and Node labels. Each is a list+watch (@tabby/datastore/kubernetes's KubernetesWatch:
// resourceVersion, bookmarks, 410 Gone -> list again, reconnect with capped backoff) whose
// objects go through bgpconfig/kubernetes.ts's converters, the same ones `tabby render
// --kubernetes-objects` uses.
//
// What is watched, and why so (Calico v3.31.7's confd is the model):
// - Secrets: one watch per Secret a password reference names, in the daemon's namespace, with
//   fieldSelector=metadata.name=<name>, as confd's secret_watcher.go does. The API server
//   authorizes such a list/watch against RBAC resourceNames, so the operator can grant exactly
//   those Secrets (a Role with resourceNames) instead of every Secret in the namespace. A
//   Secret no longer referenced stops being watched (confd's SweepStale). A newly referenced
//   Secret gets 500 ms to arrive before the configuration is computed without it (confd's
//   allowTimeForControllerSync), so a Secret that cannot be read (RBAC, missing) delays
//   nothing for long; the warning says the password is missing.
// - Services and EndpointSlices (discovery.k8s.io/v1), cluster-wide, only once a service range
//   is configured (BGPConfiguration serviceClusterIPs / serviceExternalIPs /
//   serviceLoadBalancerIPs, or CALICO_ADVERTISE_CLUSTER_IPS): confd starts its route
//   generator only then, "to avoid needing to watch services / endpoints" on every node of a
//   large cluster. Once started they are never stopped, as in confd.
// - Nodes, cluster-wide, metadata only (Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;
//   v=v1, as client-go's metadata informer asks): labels are all that is read, and a full Node
//   (images, status) is many kilobytes that change with every kubelet status update. A server
//   that cannot answer that way sends full objects, which read the same.
//
// `synced` holds the daemon back at start-up (as confd renders nothing before its sources
// are in sync), so a restarting node never advertises a configuration without its service
// addresses. After the first time it is true it stays true: a watch that fails later keeps
// its last good state, counts the error and retries by itself.
import type { KubeConfig } from '@kubernetes/client-node';
import { KubernetesWatch } from '@tabby/datastore/kubernetes';
import type { WatchTransport } from '@tabby/datastore/kubernetes';
import type {
  BgpEnvironment,
  BgpSnapshot,
  EndpointSliceInfo,
  KubernetesObjects,
  SecretData,
  ServiceInfo,
} from '../bgpconfig/inputs.js';
import {
  endpointSliceFrom,
  KubernetesObjectError,
  kubernetesNeeds,
  nodeLabelsFrom,
  secretFrom,
  serviceFrom,
} from '../bgpconfig/kubernetes.js';
import type { KubernetesObjectsSource } from '../daemon/node-daemon.js';
import type { CacheHealth } from '../daemon/resource-cache.js';
import { apiError, KubernetesApi, KubernetesApiError } from './api.js';

/**
 * The namespace the password Secrets are read from: NAMESPACE (what Calico's confd reads),
 * else POD_NAMESPACE (the downward-API name a Tabby DaemonSet can set), else kube-system
 * (confd's default).
 */
export function secretsNamespace(env: Readonly<Record<string, string | undefined>>): string {
  for (const v of [env['NAMESPACE'], env['POD_NAMESPACE']]) if (v !== undefined && v !== '') return v;
  return 'kube-system';
}

/** client-go's metadata client: PartialObjectMetadata(List), or the full object from a server that cannot. */
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_WATCH = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export interface ObjectsWatcherOptions {
  readonly kubeConfig: KubeConfig;
  /** Where the password Secrets are: secretsNamespace(process.env). */
  readonly namespace: string;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  /** How long a newly referenced Secret may take before the configuration is computed without it (ms). Default 500, as confd. */
  readonly secretGraceMs?: number;
  /** Deadline of a list request (ms). Default 30 000. */
  readonly requestTimeoutMs?: number;
  /** First reconnect delay and its cap (ms). Defaults 250 and 30 000. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Each watch asks the server to end it after a random timeoutSeconds in [t, 2t). Default 300. */
  readonly watchTimeoutSeconds?: number;
  /** A watch still open this long past its timeoutSeconds is taken as stalled (ms). Default 30 000. */
  readonly watchGraceMs?: number;
}

/** An object as the watch loop carries it: what it needs (name, resourceVersion) and the wire JSON. */
interface RawObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
  readonly raw: unknown;
}

function rawObject(o: unknown, label: string): RawObject {
  const m =
    typeof o === 'object' && o !== null ? (o as { metadata?: Record<string, unknown> }).metadata : undefined;
  const name = m?.['name'];
  if (typeof name !== 'string' || name === '')
    throw new KubernetesApiError(
      0,
      undefined,
      `${label}: the API server sent an object without metadata.name`,
    );
  const ns = m?.['namespace'];
  const rv = m?.['resourceVersion'];
  return {
    metadata: {
      name,
      ...(typeof ns === 'string' && ns !== '' ? { namespace: ns } : {}),
      ...(typeof rv === 'string' ? { resourceVersion: rv } : {}),
    },
    raw: o,
  };
}

const keyOf = (o: RawObject): string =>
  o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`;

interface FeedSpec<T> {
  /** For messages and health: `nodes`, `services`, `secret kube-system/bgp-password`. */
  readonly label: string;
  /** The collection: `/api/v1/nodes`, `/api/v1/namespaces/<ns>/secrets`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly listAccept?: string;
  readonly watchAccept?: string;
  /** The object in the form the configuration reads; throws KubernetesObjectError. */
  readonly convert: (raw: unknown) => T;
}

/** One list+watch and the converted objects it holds, by namespace/name. */
class Feed<T> {
  readonly items = new Map<string, T>();
  /** Had its first full list. */
  synced = false;
  private readonly watch: KubernetesWatch<RawObject>;
  private readonly texts = new Map<string, string>();

  constructor(
    api: KubernetesApi,
    readonly spec: FeedSpec<T>,
    timing: {
      backoffInitialMs: number;
      backoffMaxMs: number;
      watchTimeoutSeconds: number;
      watchGraceMs: number;
    },
    /** After each event applied: whether what the configuration reads changed. */
    private readonly applied: (feed: Feed<T>, changed: boolean) => void,
    private readonly failed: (feed: Feed<T>, error: Error) => void,
  ) {
    const { label, path } = spec;
    const query = spec.query ?? {};
    const transport: WatchTransport<RawObject> = {
      list: async () => {
        const body = await api.get(
          `list ${label}`,
          path,
          { ...query },
          spec.listAccept === undefined ? {} : { Accept: spec.listAccept },
        );
        const b = (typeof body === 'object' && body !== null ? body : {}) as {
          items?: unknown;
          metadata?: { resourceVersion?: unknown };
        };
        const revision = b.metadata?.resourceVersion;
        if (!Array.isArray(b.items) || typeof revision !== 'string' || revision === '')
          throw new KubernetesApiError(
            0,
            undefined,
            `list ${label}: the answer is not a list with a resourceVersion`,
          );
        return { items: b.items.map((i: unknown) => rawObject(i, `list ${label}`)), revision };
      },
      open: (rv, timeoutSeconds, signal) =>
        api.openWatch(
          path,
          {
            ...query,
            watch: 'true',
            resourceVersion: rv,
            allowWatchBookmarks: 'true',
            timeoutSeconds: String(timeoutSeconds),
          },
          spec.watchAccept === undefined ? {} : { Accept: spec.watchAccept },
          signal,
        ),
      toResource: (raw) => rawObject(raw, `watch ${label}`),
      failure: (code, body) => apiError(`watch ${label}`, code, body),
    };
    this.watch = new KubernetesWatch<RawObject>(transport, label, timing, () => undefined);
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for await (const ev of this.watch) {
        let changed: boolean;
        switch (ev.type) {
          case 'resync': {
            const before = new Map(this.texts);
            this.items.clear();
            this.texts.clear();
            for (const o of ev.items) this.put(o);
            changed =
              before.size !== this.texts.size || [...before].some(([k, t]) => this.texts.get(k) !== t);
            const first = !this.synced;
            this.synced = true;
            this.applied(this, changed || first);
            continue;
          }
          case 'added':
          case 'modified': {
            const k = keyOf(ev.object);
            const before = this.texts.get(k);
            this.put(ev.object);
            changed = this.texts.get(k) !== before;
            break;
          }
          case 'deleted': {
            const k = keyOf(ev.object);
            changed = this.items.delete(k);
            this.texts.delete(k);
            break;
          }
          case 'bookmark':
            continue;
          case 'error':
            this.failed(this, ev.error);
            continue;
        }
        this.applied(this, changed);
      }
    } catch (e) {
      // The loop ends only through close(); anything else is reported, loudly.
      this.failed(this, new Error(`watch ${this.spec.label} ended: ${(e as Error).message}`, { cause: e }));
    }
  }

  /** Converts and stores one object; an object that cannot be read is reported and left out (not kept stale). */
  private put(o: RawObject): void {
    const k = keyOf(o);
    try {
      const v = this.spec.convert(o.raw);
      this.items.set(k, v);
      this.texts.set(k, JSON.stringify(v));
    } catch (e) {
      if (!(e instanceof KubernetesObjectError)) throw e;
      this.items.delete(k);
      this.texts.delete(k);
      this.failed(this, new KubernetesObjectError(`${this.spec.label} ${k}: ${e.message}`));
    }
  }

  close(): void {
    this.watch.close();
  }
}

interface SecretFeed {
  readonly feed: Feed<SecretData>;
  /** The grace period is over: the configuration no longer waits for this Secret. */
  graced: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class KubernetesObjectsWatcher implements KubernetesObjectsSource {
  private readonly api: KubernetesApi;
  private readonly timing: {
    backoffInitialMs: number;
    backoffMaxMs: number;
    watchTimeoutSeconds: number;
    watchGraceMs: number;
  };
  private onChange: () => void = () => undefined;
  private nodes: Feed<{ readonly name: string; readonly labels: Record<string, string> }> | undefined;
  private services: Feed<ServiceInfo> | undefined;
  private slices: Feed<EndpointSliceInfo> | undefined;
  private readonly secrets = new Map<string, SecretFeed>();
  private followed = false;
  private everSynced = false;
  private stopped = false;
  private readonly errors: Record<string, number> = {};
  private lastError: string | undefined;
  /** The last error of each watch, by label, for the message when a Secret is late. */
  private readonly lastErrors = new Map<string, string>();
  private built: KubernetesObjects | undefined;

  constructor(private readonly opts: ObjectsWatcherOptions) {
    this.api = new KubernetesApi(opts.kubeConfig, {
      ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    });
    this.timing = {
      backoffInitialMs: opts.backoffInitialMs ?? 250,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      watchTimeoutSeconds: Math.max(1, opts.watchTimeoutSeconds ?? 300),
      watchGraceMs: opts.watchGraceMs ?? 30_000,
    };
  }

  /** Starts the Node watch; `onChange` is called after every change applied (the daemon recomputes). */
  start(onChange: () => void): void {
    this.onChange = onChange;
    this.nodes ??= this.feed({
      label: 'nodes',
      path: '/api/v1/nodes',
      listAccept: METADATA_LIST,
      watchAccept: METADATA_WATCH,
      convert: nodeLabelsFrom,
    });
  }

  /**
   * Follows what a snapshot's configuration reads: a watch for each password Secret it names
   * (and none for those it no longer names), and Services and EndpointSlices once a service
   * range is configured. Cheap when nothing changed; the daemon calls it before every pass.
   */
  follow(snapshot: BgpSnapshot, env: BgpEnvironment): void {
    if (this.stopped) return;
    this.followed = true;
    const needs = kubernetesNeeds(snapshot, env);
    const wanted = new Set(needs.secrets);
    for (const [name, s] of this.secrets)
      if (!wanted.has(name)) {
        s.feed.close();
        if (s.timer !== undefined) clearTimeout(s.timer);
        this.secrets.delete(name);
        this.built = undefined;
        this.opts.log?.(
          'info',
          `Secret ${this.opts.namespace}/${name} is no longer referenced; not watching it`,
        );
      }
    for (const name of wanted) if (!this.secrets.has(name)) this.followSecret(name);
    if (needs.services && this.services === undefined) {
      this.opts.log?.('info', 'service advertisement is configured: watching Services and EndpointSlices');
      this.services = this.feed({ label: 'services', path: '/api/v1/services', convert: serviceFrom });
      this.slices = this.feed({
        label: 'endpointslices',
        path: '/apis/discovery.k8s.io/v1/endpointslices',
        convert: endpointSliceFrom,
      });
    }
  }

  private followSecret(name: string): void {
    const ns = this.opts.namespace;
    const s: SecretFeed = {
      feed: this.feed({
        label: `secret ${ns}/${name}`,
        path: `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets`,
        query: { fieldSelector: `metadata.name=${name}` },
        convert: secretFrom,
      }),
      graced: false,
      timer: undefined,
    };
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.graced = true;
      if (this.stopped || s.feed.synced) return;
      const why = this.lastErrors.get(s.feed.spec.label);
      this.opts.log?.(
        'warn',
        `Secret ${ns}/${name} not read within ${this.opts.secretGraceMs ?? 500} ms${why === undefined ? '' : ` (${why})`}; computing without it until it is`,
      );
      this.onChange();
    }, this.opts.secretGraceMs ?? 500);
    this.secrets.set(name, s);
  }

  private feed<T>(spec: FeedSpec<T>): Feed<T> {
    return new Feed<T>(
      this.api,
      spec,
      this.timing,
      (_feed, changed) => {
        if (this.stopped || !changed) return;
        this.built = undefined;
        this.onChange();
      },
      (feed, error) => {
        if (this.stopped) return;
        const label = feed.spec.label;
        this.errors[label] = (this.errors[label] ?? 0) + 1;
        this.lastError = `${label}: ${error.message}`;
        this.lastErrors.set(label, error.message);
        this.opts.log?.(error instanceof KubernetesObjectError ? 'warn' : 'error', error.message);
      },
    );
  }

  /** Every watch the configuration waits for has its first list (then true for good). */
  get synced(): boolean {
    if (this.everSynced) return true;
    const ready =
      this.followed &&
      this.nodes?.synced === true &&
      (this.services === undefined || (this.services.synced && this.slices?.synced === true)) &&
      [...this.secrets.values()].every((s) => s.feed.synced || s.graced);
    if (ready) this.everSynced = true;
    return ready;
  }

  /** What the configuration reads now. */
  current(): KubernetesObjects {
    this.built ??= {
      secrets: [...this.secrets.values()].flatMap((s) => [...s.feed.items.values()]),
      services: [...(this.services?.items.values() ?? [])],
      endpointSlices: [...(this.slices?.items.values() ?? [])],
      nodeLabels: new Map([...(this.nodes?.items.values() ?? [])].map((n) => [n.name, n.labels])),
    };
    return this.built;
  }

  get health(): CacheHealth {
    return {
      synced: this.synced,
      errors: { ...this.errors },
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  stop(): void {
    this.stopped = true;
    for (const f of [this.nodes, this.services, this.slices]) f?.close();
    for (const s of this.secrets.values()) {
      s.feed.close();
      if (s.timer !== undefined) clearTimeout(s.timer);
    }
  }
}
