// The dataplane's Prometheus metrics, defined in one place on an injected prom-client
// Registry (MetalLB's metrics.go, bgp-ts's SpeakerMetrics): names `tabby_dataplane_…`, base
// units, `_total` only on counters. One DataplaneMetrics per registry, shared by the
// reconcilers registered on it (a metric name can be registered once per registry); each
// reconciler labels what it records with its name. The table in docs/felix-lite.md lists
// them; a test keeps the two in step.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Which reconciler recorded it: the `reconciler` label. */
export type ReconcilerName = 'routes' | 'neighbours' | 'nat';

/** A refused write (route, neighbour entry) or a pass that failed as a whole. */
export type ErrorKind = 'write' | 'pass';

/** Desired and programmed counts a reconciler reports at scrape time. */
export interface ProgrammedCounts {
  readonly desired: number;
  /** Desired objects the kernel holds as wanted. */
  readonly programmed: number;
  /** Desired objects waiting for their device (missing or down). */
  readonly waiting: number;
}

const PREFIX = 'tabby_dataplane';

/** The name, type, labels and help of every metric (the docs table and its test read this). */
export const DATAPLANE_METRICS = [
  {
    name: `${PREFIX}_reconcile_duration_seconds`,
    type: 'histogram',
    labels: ['reconciler', 'resync'],
    help: 'Duration of one reconcile pass; resync="true" when the pass read the kernel state back in full (a dump).',
  },
  {
    name: `${PREFIX}_reconcile_errors_total`,
    type: 'counter',
    labels: ['reconciler', 'kind', 'errno'],
    help: 'Errors: kind="write" a write the kernel refused (route, neighbour entry), kind="pass" a pass that failed as a whole (retried with backoff); errno the error code (EEXIST, ENODEV, EINTR...), "none" when it has none (nft).',
  },
  {
    name: `${PREFIX}_writes_total`,
    type: 'counter',
    labels: ['reconciler', 'op'],
    help: 'Writes the kernel accepted: op add, replace or delete (routes), set or delete (neighbour entries), table (a NAT transaction).',
  },
  {
    name: `${PREFIX}_drift_repairs_total`,
    type: 'counter',
    labels: ['reconciler'],
    help: 'Writes that put back kernel state changed behind our back (deleted or edited by hand, flushed) after it had been in sync.',
  },
  {
    name: `${PREFIX}_last_sync_timestamp_seconds`,
    type: 'gauge',
    labels: ['reconciler'],
    help: 'Unix time of the last pass that ended with the kernel equal to the desired state (objects waiting for a device aside).',
  },
  {
    name: `${PREFIX}_routes_desired`,
    type: 'gauge',
    labels: [],
    help: 'Routes the node wants (every RouteReconciler on the registry).',
  },
  {
    name: `${PREFIX}_routes_programmed`,
    type: 'gauge',
    labels: [],
    help: 'Desired routes the kernel holds as wanted.',
  },
  {
    name: `${PREFIX}_routes_waiting`,
    type: 'gauge',
    labels: [],
    help: 'Desired routes waiting for their device (a pod veth not made yet, a device down).',
  },
  {
    name: `${PREFIX}_neighbours_desired`,
    type: 'gauge',
    labels: [],
    help: 'Permanent neighbour and FDB entries the node wants (VXLAN devices, pod veths).',
  },
  {
    name: `${PREFIX}_neighbours_programmed`,
    type: 'gauge',
    labels: [],
    help: 'Desired neighbour and FDB entries the kernel holds as wanted.',
  },
  {
    name: `${PREFIX}_neighbours_waiting`,
    type: 'gauge',
    labels: [],
    help: 'Desired neighbour and FDB entries waiting for their device.',
  },
] as const;

type MetricName = (typeof DATAPLANE_METRICS)[number]['name'];

function spec(name: MetricName): { name: string; help: string } {
  const m = DATAPLANE_METRICS.find((x) => x.name === name)!;
  return { name: m.name, help: m.help };
}

/** The error's code as a label: a NetlinkError's or Node's errno name, else "none". */
export function errnoLabel(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'none';
}

const shared = new WeakMap<Registry, DataplaneMetrics>();

export class DataplaneMetrics {
  readonly passSeconds: Histogram<'reconciler' | 'resync'>;
  readonly errors: Counter<'reconciler' | 'kind' | 'errno'>;
  readonly writes: Counter<'reconciler' | 'op'>;
  readonly driftRepairs: Counter<'reconciler'>;
  readonly lastSync: Gauge<'reconciler'>;
  private readonly routeCounts = new Set<() => ProgrammedCounts>();
  private readonly neighbourCounts = new Set<() => ProgrammedCounts>();

  /** The metrics on this registry, registered with the first reconciler that asks. */
  static on(registry: Registry): DataplaneMetrics {
    let m = shared.get(registry);
    if (m === undefined) {
      m = new DataplaneMetrics(registry);
      shared.set(registry, m);
    }
    return m;
  }

  private constructor(registry: Registry) {
    const registers = [registry];
    this.passSeconds = new Histogram({
      ...spec(`${PREFIX}_reconcile_duration_seconds`),
      labelNames: ['reconciler', 'resync'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.errors = new Counter({
      ...spec(`${PREFIX}_reconcile_errors_total`),
      labelNames: ['reconciler', 'kind', 'errno'],
      registers,
    });
    this.writes = new Counter({
      ...spec(`${PREFIX}_writes_total`),
      labelNames: ['reconciler', 'op'],
      registers,
    });
    this.driftRepairs = new Counter({
      ...spec(`${PREFIX}_drift_repairs_total`),
      labelNames: ['reconciler'],
      registers,
    });
    this.lastSync = new Gauge({
      ...spec(`${PREFIX}_last_sync_timestamp_seconds`),
      labelNames: ['reconciler'],
      registers,
    });
    // counts are read at scrape time from the reconcilers, not kept up to date per pass
    const gauge = (
      name: MetricName,
      from: Set<() => ProgrammedCounts>,
      field: keyof ProgrammedCounts,
    ): void => {
      const g: Gauge = new Gauge({
        ...spec(name),
        registers,
        collect: () => {
          let n = 0;
          for (const f of from) n += f()[field];
          g.set(n);
        },
      });
    };
    gauge(`${PREFIX}_routes_desired`, this.routeCounts, 'desired');
    gauge(`${PREFIX}_routes_programmed`, this.routeCounts, 'programmed');
    gauge(`${PREFIX}_routes_waiting`, this.routeCounts, 'waiting');
    gauge(`${PREFIX}_neighbours_desired`, this.neighbourCounts, 'desired');
    gauge(`${PREFIX}_neighbours_programmed`, this.neighbourCounts, 'programmed');
    gauge(`${PREFIX}_neighbours_waiting`, this.neighbourCounts, 'waiting');
  }

  /** Reports a route reconciler's counts at each scrape; returns the function that stops it. */
  countRoutes(counts: () => ProgrammedCounts): () => void {
    this.routeCounts.add(counts);
    return () => this.routeCounts.delete(counts);
  }

  countNeighbours(counts: () => ProgrammedCounts): () => void {
    this.neighbourCounts.add(counts);
    return () => this.neighbourCounts.delete(counts);
  }

  /** A pass that ended: its duration, and the sync time when it left the kernel as wanted. */
  passDone(reconciler: ReconcilerName, seconds: number, resync: boolean, inSync: boolean): void {
    this.passSeconds.observe({ reconciler, resync: resync ? 'true' : 'false' }, seconds);
    if (inSync) this.lastSync.set({ reconciler }, Date.now() / 1000);
  }

  /** A pass that failed as a whole. */
  passFailed(reconciler: ReconcilerName, seconds: number, resync: boolean, e: unknown): void {
    this.passSeconds.observe({ reconciler, resync: resync ? 'true' : 'false' }, seconds);
    this.errors.inc({ reconciler, kind: 'pass', errno: errnoLabel(e) });
  }

  writeRefused(reconciler: ReconcilerName, e: unknown): void {
    this.errors.inc({ reconciler, kind: 'write', errno: errnoLabel(e) });
  }

  wrote(reconciler: ReconcilerName, op: string, n = 1): void {
    if (n > 0) this.writes.inc({ reconciler, op }, n);
  }

  repaired(reconciler: ReconcilerName, n = 1): void {
    if (n > 0) this.driftRepairs.inc({ reconciler }, n);
  }
}
