// An in-memory IpamClient: addresses handed out in order from small IPv4 and IPv6 ranges,
// held by handle, with the attributes each allocation was given. Faults: `fail(op)`.
import type { IpamAllocation, IpamClient, IpamRequest, IpamStatus } from '../commands/interfaces.js';
import { CniError, ErrorCode } from '../spec/errors.js';

export type IpamOp = 'allocate' | 'release' | 'addresses' | 'listHandles' | 'status';

export interface FakeIpamOptions {
  /** Addresses per family. [Default: 8] */
  readonly size?: number;
  readonly ipv4?: boolean;
  readonly ipv6?: boolean;
}

export class FakeIpam implements IpamClient {
  readonly handles = new Map<string, { addresses: string[]; req: IpamRequest }>();
  readonly calls: string[] = [];
  statusResult: IpamStatus = { ok: true };
  closed = 0;
  private readonly free4: string[] = [];
  private readonly free6: string[] = [];
  private readonly faults = new Map<IpamOp, { err: Error; times: number }>();

  constructor(private readonly opts: FakeIpamOptions = {}) {
    const n = opts.size ?? 8;
    for (let i = 1; i <= n; i++) {
      this.free4.push(`10.65.0.${i}/32`);
      this.free6.push(`fd00:65::${i.toString(16)}/128`);
    }
  }

  fail(op: IpamOp, err: Error = new Error(`injected ${op} failure`), times = 1): this {
    this.faults.set(op, { err, times });
    return this;
  }

  private enter(op: IpamOp, what: string): void {
    this.calls.push(`${op} ${what}`);
    const f = this.faults.get(op);
    if (f === undefined) return;
    if (--f.times <= 0) this.faults.delete(op);
    throw f.err;
  }

  /** Every address held, by anyone. */
  get inUse(): string[] {
    return [...this.handles.values()].flatMap((h) => h.addresses);
  }

  allocate(req: IpamRequest): Promise<IpamAllocation> {
    this.enter('allocate', req.handle);
    if (req.ips !== undefined && req.ips.length > 0) return this.assignNamed(req, req.ips);
    const want4 = this.opts.ipv4 ?? true;
    const want6 = this.opts.ipv6 ?? false;
    if ((want4 && this.free4.length === 0) || (want6 && this.free6.length === 0))
      return Promise.reject(
        new CniError(ErrorCode.NoAddress, 'no address available', `fake pool exhausted for node ${req.node}`),
      );
    const got = [...(want4 ? [this.free4.shift()!] : []), ...(want6 ? [this.free6.shift()!] : [])];
    const h = this.handles.get(req.handle);
    if (h === undefined) this.handles.set(req.handle, { addresses: got, req });
    else h.addresses.push(...got);
    return Promise.resolve({ addresses: got });
  }

  /** Addresses asked for by name: all of them, or an error and none. */
  private assignNamed(req: IpamRequest, ips: readonly string[]): Promise<IpamAllocation> {
    const got = ips.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`);
    const taken = got.find((a) => this.inUse.includes(a));
    if (taken !== undefined)
      return Promise.reject(
        new CniError(ErrorCode.IpamRefused, `IPAM allocation for ${req.handle} failed`, `${taken} is in use`),
      );
    for (const a of got) {
      const free = a.includes(':') ? this.free6 : this.free4;
      const i = free.indexOf(a);
      if (i >= 0) free.splice(i, 1);
    }
    const h = this.handles.get(req.handle);
    if (h === undefined) this.handles.set(req.handle, { addresses: got, req });
    else h.addresses.push(...got);
    return Promise.resolve({ addresses: got });
  }

  release(handle: string): Promise<void> {
    this.enter('release', handle);
    const h = this.handles.get(handle);
    if (h === undefined) return Promise.resolve();
    this.handles.delete(handle);
    for (const a of h.addresses) (a.includes(':') ? this.free6 : this.free4).push(a);
    return Promise.resolve();
  }

  addresses(handle: string): Promise<readonly string[]> {
    this.enter('addresses', handle);
    return Promise.resolve([...(this.handles.get(handle)?.addresses ?? [])]);
  }

  listHandles(network: string): Promise<readonly string[]> {
    this.enter('listHandles', network);
    return Promise.resolve([...this.handles.keys()].filter((h) => h.startsWith(`${network}.`)));
  }

  status(): Promise<IpamStatus> {
    this.enter('status', '');
    return Promise.resolve(this.statusResult);
  }

  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}
