// tabby-node's own Prometheus metrics (the speaker's per-peer metrics come from bgp-ts's
// SpeakerMetrics with the prefix tabby_bgp). Names are listed in docs/node-daemon.md.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Utilization } from '@tabby/datastore';
import type { CacheHealth } from './resource-cache.js';

export class NodeMetrics {
  readonly datastoreSynced: Gauge;
  readonly watchErrors: Gauge;
  readonly configApplied: Counter;
  readonly learnedRoutes: Gauge;
  readonly programmingSeconds: Histogram;
  readonly ready: Gauge;
  readonly ipamAddresses: Gauge | undefined;

  constructor(
    registry: Registry,
    sample: () => { readonly health: CacheHealth; readonly learned: number; readonly ready: boolean },
    /** IPAM usage, read from the datastore at scrape time; absent: not exported. */
    ipam?: { readonly nodeName: string; readonly utilization: () => Promise<Utilization> },
  ) {
    if (ipam !== undefined) {
      const g: Gauge = new Gauge({
        name: 'tabby_node_ipam_addresses',
        help: 'IPAM addresses by pool and state (in_use, free), and this node\'s own (pool "node", states in_use, borrowed, blocks).',
        labelNames: ['pool', 'state'],
        registers: [registry],
        collect: async () => {
          let u: Utilization;
          try {
            u = await ipam.utilization();
          } catch {
            // The datastore is unreachable: keep the last values. Throwing would fail the
            // whole scrape, every BGP series with it, just when an outage needs watching.
            return;
          }
          g.reset();
          for (const p of u.pools) {
            g.set({ pool: p.cidr, state: 'in_use' }, p.inUse);
            g.set({ pool: p.cidr, state: 'free' }, p.free);
          }
          const me = u.nodes.find((n) => n.node === ipam.nodeName);
          g.set({ pool: 'node', state: 'in_use' }, me?.inUse ?? 0);
          g.set({ pool: 'node', state: 'borrowed' }, me?.borrowed ?? 0);
          g.set({ pool: 'node', state: 'blocks' }, me?.blocks ?? 0);
        },
      });
      this.ipamAddresses = g;
    }
    this.datastoreSynced = new Gauge({
      name: 'tabby_node_datastore_synced',
      help: '1 once every watched kind has had its first full list from the datastore.',
      registers: [registry],
      collect: () => this.datastoreSynced.set(sample().health.synced ? 1 : 0),
    });
    this.watchErrors = new Gauge({
      name: 'tabby_node_datastore_watch_errors',
      help: 'Datastore watch errors since start, by kind (each watch retries by itself).',
      labelNames: ['kind'],
      registers: [registry],
      collect: () => {
        for (const [kind, n] of Object.entries(sample().health.errors)) this.watchErrors.set({ kind }, n);
      },
    });
    this.configApplied = new Counter({
      name: 'tabby_node_bgp_config_applied_total',
      help: 'BGP configurations computed from the datastore and applied to the speaker.',
      registers: [registry],
    });
    this.learnedRoutes = new Gauge({
      name: 'tabby_node_learned_routes',
      help: 'Prefixes with a best path learned from a BGP peer.',
      registers: [registry],
      collect: () => this.learnedRoutes.set(sample().learned),
    });
    this.programmingSeconds = new Histogram({
      name: 'tabby_node_route_programming_seconds',
      help: 'From a best-path change in the speaker to the dataplane reporting the kernel programmed.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
    this.ready = new Gauge({
      name: 'tabby_node_ready',
      help: '1 when /readyz answers ready.',
      registers: [registry],
      collect: () => this.ready.set(sample().ready ? 1 : 0),
    });
  }
}
