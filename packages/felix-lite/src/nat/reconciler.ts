// Keeps the kernel's NAT-outgoing equal to the plan: each pass reads our tables back
// (`nft -j list table`, both families), compares them with the plan (natTableDiff) and, when
// anything differs, rewrites them all in one `nft -f -` transaction, then reads them back
// again to confirm. Passes run on setDesired, on a timer (drift: someone flushed, edited or
// deleted our table) and after a failure with backoff.
//
// Hazards:
// - No writes before the first setDesired(): a reconciler that has not been told the pools
//   must not remove the NAT a previous run left working.
// - stop() leaves the tables as they are (pods keep their egress across a restart); pass an
//   empty `nat` to setDesired() to remove them.
// - Only `table ip <name>` and `table ip6 <name>` are ever written or deleted; nothing else in
//   the host's ruleset is read or touched.
import type { Clock, LoopTiming } from '@tabby/ipip';
import { ReconcileLoop } from '@tabby/ipip';
import type { NatOutgoing } from '../desired/compute.js';
import type { Nft, NftObject } from './nft.js';
import { NftError, natTableDiff } from './nft.js';
import type { NatPlan, NatRenderOptions, NftFamily } from './render.js';
import { planNat, renderNatScript } from './render.js';
import type { Registry } from 'prom-client';
import { DataplaneMetrics } from '../metrics/metrics.js';

/** pino-compatible; the same shape as felix-lite's reconciler Logger. */
export interface NatLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

export interface NatReconcilerInit extends LoopTiming, NatRenderOptions {}

export interface NatReconcilerComponents {
  readonly nft: Nft;
  readonly clock?: Clock;
  readonly logger?: NatLogger;
  readonly random?: () => number;
  /** Where to register the tabby_dataplane_* metrics (none without one). */
  readonly registry?: Registry;
}

export interface NatPassResult {
  /** True when the pass wrote the tables. */
  readonly written: boolean;
  /** What differed before writing (empty when nothing did). */
  readonly differences: readonly string[];
}

const quiet: NatLogger = { info: () => undefined, warn: () => undefined };

/** The default drift check interval: cheap (two short nft runs), so much shorter than Calico's 90 s. */
export const NAT_RESYNC_INTERVAL_MS = 10_000;

export class NatReconciler {
  private readonly nft: Nft;
  private readonly log: NatLogger;
  private readonly render: NatRenderOptions;
  private readonly loop: ReconcileLoop<NatPassResult>;
  private plan: NatPlan | undefined;
  /** The plan the tables were last seen to match: differences from it later are drift. */
  private verified: NatPlan | undefined;
  private readonly metrics: DataplaneMetrics | undefined;

  lastResult: NatPassResult | undefined;
  lastError: Error | undefined;

  constructor(components: NatReconcilerComponents, init: NatReconcilerInit = {}) {
    this.nft = components.nft;
    this.log = components.logger ?? quiet;
    this.metrics = components.registry === undefined ? undefined : DataplaneMetrics.on(components.registry);
    this.render = {
      ...(init.table !== undefined ? { table: init.table } : {}),
      ...(init.fullyRandom !== undefined ? { fullyRandom: init.fullyRandom } : {}),
    };
    this.loop = new ReconcileLoop<NatPassResult>(
      {
        pass: () => this.pass(),
        ...(components.clock !== undefined ? { clock: components.clock } : {}),
        ...(components.random !== undefined ? { random: components.random } : {}),
      },
      { resyncIntervalMs: NAT_RESYNC_INTERVAL_MS, ...init },
    );
    this.loop.onPass((r) => {
      if (r instanceof Error) {
        this.lastError = r;
        this.log.warn({ err: r }, 'NAT-outgoing pass failed');
      } else {
        this.lastResult = r;
        this.lastError = undefined;
        if (r.written) this.log.info({ differences: r.differences }, 'NAT-outgoing tables rewritten');
      }
    });
  }

  /** The NAT wanted (computeDesired's `nat`); throws NatConfigError on input it cannot render. */
  setDesired(nat: readonly NatOutgoing[]): void {
    const plan = planNat(nat, this.render);
    // The node daemon calls this on every datastore change (each pod's endpoint): the same
    // plan again needs no pass, whose two `nft list` runs would cost a fork each time. Drift
    // is the resync timer's job. The old plan object stays, as `verified` refers to it.
    if (this.plan !== undefined && JSON.stringify(plan) === JSON.stringify(this.plan)) return;
    this.plan = plan;
    this.loop.kick();
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** One pass now; rejects when it fails (nft missing, the transaction refused). */
  apply(): Promise<NatPassResult> {
    return this.loop.run();
  }

  /** A drift check at once (e.g. after the operator reloaded the host's firewall). */
  requestResync(): void {
    this.loop.requestResync();
  }

  onPass(fn: (r: NatPassResult | Error) => void): () => void {
    return this.loop.onPass(fn);
  }

  private async diff(plan: NatPlan): Promise<string[]> {
    const read = async (f: NftFamily): Promise<readonly NftObject[] | undefined> =>
      this.nft.listTable(f, plan.table);
    const out: string[] = [];
    for (const f of ['ip', 'ip6'] as const)
      out.push(
        ...natTableDiff(
          plan,
          plan.tables.find((t) => t.family === f),
          f,
          await read(f),
        ),
      );
    return out;
  }

  private async pass(): Promise<NatPassResult> {
    const plan = this.plan;
    const t0 = performance.now();
    try {
      const r = await this.passInner(plan);
      this.metrics?.passDone('nat', (performance.now() - t0) / 1000, plan !== undefined, plan !== undefined);
      return r;
    } catch (e) {
      this.metrics?.passFailed('nat', (performance.now() - t0) / 1000, plan !== undefined, e);
      throw e;
    }
  }

  private async passInner(plan: NatPlan | undefined): Promise<NatPassResult> {
    if (plan === undefined) return { written: false, differences: [] };
    const differences = await this.diff(plan);
    if (differences.length === 0) {
      this.verified = plan;
      return { written: false, differences };
    }
    // the tables matched this very plan before: someone changed them since
    const drift = this.verified === plan;
    this.verified = undefined;
    await this.nft.apply(renderNatScript(plan));
    this.metrics?.wrote('nat', 'table');
    const after = await this.diff(plan);
    // nft accepted the script but the tables still differ: our rendering and our reading
    // disagree (an nft version we do not understand); failing makes it loud and backs off
    if (after.length > 0)
      throw new NftError(`NAT tables read back differ from what was written: ${after.join('; ')}`);
    this.verified = plan;
    if (drift) this.metrics?.repaired('nat');
    return { written: true, differences };
  }
}
