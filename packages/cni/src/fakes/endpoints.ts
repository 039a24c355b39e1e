// An in-memory EndpointStore (WorkloadEndpoints by namespace/name), with fault injection.
import type {
  EndpointKey,
  EndpointStore,
  StoredEndpoint,
  WorkloadEndpointDoc,
} from '../commands/interfaces.js';
import { LABEL_NETWORK } from '../commands/endpoint.js';

export type EndpointOp = 'put' | 'get' | 'delete' | 'list';

export class FakeEndpoints implements EndpointStore {
  readonly items = new Map<string, WorkloadEndpointDoc>();
  readonly calls: string[] = [];
  private readonly faults = new Map<EndpointOp, { err: Error; times: number }>();

  static key(k: EndpointKey): string {
    return `${k.namespace}/${k.name}`;
  }

  fail(op: EndpointOp, err: Error = new Error(`injected ${op} failure`), times = 1): this {
    this.faults.set(op, { err, times });
    return this;
  }

  private enter(op: EndpointOp, what: string): void {
    this.calls.push(`${op} ${what}`);
    const f = this.faults.get(op);
    if (f === undefined) return;
    if (--f.times <= 0) this.faults.delete(op);
    throw f.err;
  }

  put(wep: WorkloadEndpointDoc): Promise<void> {
    return this.run(
      'put',
      FakeEndpoints.key(wep),
      () => void this.items.set(FakeEndpoints.key(wep), structuredClone(wep)),
    );
  }

  get(k: EndpointKey): Promise<WorkloadEndpointDoc | undefined> {
    return this.run('get', FakeEndpoints.key(k), () => {
      const w = this.items.get(FakeEndpoints.key(k));
      return w === undefined ? undefined : structuredClone(w);
    });
  }

  delete(k: EndpointKey): Promise<'deleted' | 'absent'> {
    return this.run('delete', FakeEndpoints.key(k), () =>
      this.items.delete(FakeEndpoints.key(k)) ? 'deleted' : 'absent',
    );
  }

  list(node: string, network: string): Promise<readonly StoredEndpoint[]> {
    return this.run('list', `${node} ${network}`, () =>
      [...this.items.values()]
        .filter((w) => w.spec.node === node && w.labels[LABEL_NETWORK] === network)
        .map((w) => ({
          namespace: w.namespace,
          name: w.name,
          containerID: w.spec.containerID,
          endpoint: w.spec.endpoint,
        })),
    );
  }

  /** Records the call; rejects with an injected fault, else resolves with f(). */
  private run<T>(op: EndpointOp, what: string, f: () => T): Promise<T> {
    try {
      this.enter(op, what);
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }
}
