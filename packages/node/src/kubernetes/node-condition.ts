// The Kubernetes Node's NetworkUnavailable condition, set as Calico v3.31.7 sets it
// (node/pkg/lifecycle/utils/utils.go SetNodeNetworkUnavailableCondition): a strategic merge
// patch of nodes/<name>/status carrying one NodeCondition, merged into status.conditions by
// its `type`, with Calico's own reason and message, so tooling that knows Calico's
// (`CalicoIsUp`) reads Tabby's the same:
// - False, CalicoIsUp, "Calico is running on this node": once the node is ready (Calico's
//   calico-node -complete-startup waits for BIRD and Felix readiness, startup.go
//   ManageNodeCondition; here the daemon calls routesProgrammed() when its dataplane has
//   programmed the routes and its readiness holds). If that has not happened within 5
//   minutes it is set anyway, as Calico does ("Calico failed to become ready, continuing
//   anyway"), so a node whose peers are all down still gets pods it can serve locally.
// - True, CalicoIsDown, "Calico is shutting down on this node": shuttingDown(), Calico's
//   calico-node -shutdown (shutdown.go).
// The Node is CALICO_K8S_NODE_REF when set, else the node's name (startup.go).
// Calico retries the patch in a loop for 30 s and then exits; a daemon keeps retrying with a
// capped backoff instead (a missing Node may yet register, RBAC may yet be granted), and
// stops only on an answer no retry can change (400, 415, 422: the request itself is wrong).
// Each patch stamps lastHeartbeatTime and lastTransitionTime with the current time, as
// Calico's does; a value already set is not sent again.
import type { KubeConfig } from '@kubernetes/client-node';
import { Backoff, sleep } from '@tabby/datastore/kubernetes';
import { KubernetesApi, KubernetesApiError } from './api.js';

export const NETWORK_UNAVAILABLE = 'NetworkUnavailable';

/** Calico's values (utils.go). */
export const CALICO_IS_UP = {
  status: 'False',
  reason: 'CalicoIsUp',
  message: 'Calico is running on this node',
} as const;
export const CALICO_IS_DOWN = {
  status: 'True',
  reason: 'CalicoIsDown',
  message: 'Calico is shutting down on this node',
} as const;

/** The Content-Type of the patch (client-go's Nodes().PatchStatus sends this patch type). */
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

/** The Kubernetes Node to mark: CALICO_K8S_NODE_REF, else the node's own name. */
export function kubernetesNodeName(
  env: Readonly<Record<string, string | undefined>>,
  nodeName: string,
): string {
  const ref = env['CALICO_K8S_NODE_REF'];
  return ref !== undefined && ref !== '' ? ref : nodeName;
}

/** metav1.Time's JSON form: RFC 3339 in UTC, whole seconds. */
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The patch body, byte for byte what Calico sends: `{"status":{"conditions":[…]}}` with the
 * fields in NodeCondition's order (type, status, lastHeartbeatTime, lastTransitionTime,
 * reason, message), as Go's json.Marshal writes them.
 */
export function networkUnavailablePatch(unavailable: boolean, now: Date): Record<string, unknown> {
  const v = unavailable ? CALICO_IS_DOWN : CALICO_IS_UP;
  const t = rfc3339(now);
  return {
    status: {
      conditions: [
        {
          type: NETWORK_UNAVAILABLE,
          status: v.status,
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: v.reason,
          message: v.message,
        },
      ],
    },
  };
}

export interface NodeConditionOptions {
  readonly kubeConfig: KubeConfig;
  /** The Kubernetes Node: kubernetesNodeName(process.env, nodeName). */
  readonly nodeName: string;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  /** Deadline of one PATCH (ms). Default 2000, Calico's client timeout for it. */
  readonly requestTimeoutMs?: number;
  /** First retry delay and its cap (ms). Defaults 250 and 30 000. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Set the condition False anyway this long after start() if the node never got ready (ms). Default 300 000 (Calico's 5 minutes). */
  readonly readyTimeoutMs?: number;
  /** The time stamped on the condition (tests). */
  readonly now?: () => Date;
}

/** The state for status output. */
export interface NodeConditionState {
  /** What the API server last accepted: undefined before the first success. */
  readonly networkUnavailable?: boolean;
  /** Failed PATCH attempts so far. */
  readonly failures: number;
  readonly lastError?: string;
}

export class NodeCondition {
  private readonly api: KubernetesApi;
  /** The value asked for (true: unavailable); undefined before the first ask. */
  private want: boolean | undefined;
  /** The value the API server accepted last. */
  private done: boolean | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private fallback: ReturnType<typeof setTimeout> | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly opts: NodeConditionOptions) {
    this.api = new KubernetesApi(opts.kubeConfig, { requestTimeoutMs: opts.requestTimeoutMs ?? 2000 });
  }

  /** Arms the 5-minute fallback (Calico's waitForReady timeout). */
  start(): void {
    this.fallback ??= setTimeout(() => {
      this.fallback = undefined;
      if (this.want !== undefined) return;
      this.opts.log?.(
        'warn',
        `the node did not become ready within ${Math.round((this.opts.readyTimeoutMs ?? 300_000) / 1000)} s; marking Node ${this.opts.nodeName}'s network available anyway, as Calico does`,
      );
      void this.routesProgrammed();
    }, this.opts.readyTimeoutMs ?? 300_000);
    this.fallback.unref();
  }

  /** NetworkUnavailable False (CalicoIsUp). Resolves when the API server has it, or it gave up; idempotent. */
  routesProgrammed(): Promise<void> {
    return this.set(false);
  }

  /** NetworkUnavailable True (CalicoIsDown), for shutdown. */
  shuttingDown(): Promise<void> {
    return this.set(true);
  }

  get state(): NodeConditionState {
    return {
      ...(this.done !== undefined ? { networkUnavailable: this.done } : {}),
      failures: this.failures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Cancels the fallback and any retrying. */
  stop(): void {
    if (this.fallback !== undefined) clearTimeout(this.fallback);
    this.fallback = undefined;
    this.stopping.abort();
  }

  private set(unavailable: boolean): Promise<void> {
    if (this.stopping.signal.aborted) return Promise.resolve();
    this.want = unavailable;
    if (this.running !== undefined) return this.running; // the loop picks up the new value
    if (this.done === unavailable) return Promise.resolve();
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async loop(): Promise<void> {
    const name = this.opts.nodeName;
    const backoff = new Backoff(this.opts.backoffInitialMs ?? 250, this.opts.backoffMaxMs ?? 30_000);
    while (!this.stopping.signal.aborted && this.want !== undefined && this.want !== this.done) {
      const v = this.want;
      const what = `set NetworkUnavailable ${v ? 'True' : 'False'} on Node ${name}`;
      try {
        await this.api.patch(
          what,
          `/api/v1/nodes/${encodeURIComponent(name)}/status`,
          STRATEGIC_MERGE_PATCH,
          networkUnavailablePatch(v, this.opts.now?.() ?? new Date()),
        );
        this.done = v;
        this.lastError = undefined;
        backoff.reset();
        this.opts.log?.(
          'info',
          `Node ${name}: NetworkUnavailable is ${v ? 'True' : 'False'} (${v ? CALICO_IS_DOWN.reason : CALICO_IS_UP.reason})`,
        );
      } catch (e) {
        if (!(e instanceof KubernetesApiError)) throw e;
        this.failures++;
        this.lastError = e.message;
        // 400, 415, 422: the request is wrong and stays wrong. Everything else may pass later:
        // no answer, 429, 5xx, 404 (kubelet has not registered the Node yet), 403 (RBAC).
        if (e.code === 400 || e.code === 415 || e.code === 422) {
          this.opts.log?.('error', `${e.message}; not retrying`);
          return;
        }
        const wait = backoff.next();
        this.opts.log?.('warn', `${e.message}; retrying in ${wait} ms`);
        await sleep(wait, this.stopping.signal);
      }
    }
  }
}
