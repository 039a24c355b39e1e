// The kernel as the reconciler sees it: links by name and index, our routes dumped by
// protocol, batched route writes with failures by index, and a stream of change events.
// Two implementations: NetlinkKernel (the real one, over @tabby/netlink) and FakeKernel (in
// memory, with fault injection, for the reconciler's tests and anyone composing it).
import type { NetlinkError, RouteInfo, RouteSpec, RouteView } from '@tabby/netlink/codec';
import type { IpVersion } from '../routes/ip.js';

export interface KernelLink {
  readonly index: number;
  readonly name: string;
  /** Administratively up (IFF_UP): the kernel refuses routes through a down device. */
  readonly up: boolean;
}

export type RouteOpKind = 'add' | 'replace' | 'delete';

/** One route write: add (fails with EEXIST when the key is taken), replace, or delete. */
export interface RouteOp {
  readonly op: RouteOpKind;
  readonly route: RouteSpec;
}

/** A refused write: its position in the batch and the kernel's error. */
export interface RouteOpFailure {
  readonly index: number;
  readonly error: NetlinkError;
}

export interface RouteFilter {
  readonly family: IpVersion;
  readonly table: number;
  readonly protocol: number;
}

export type KernelEvent =
  | { readonly kind: 'route'; readonly op: 'new' | 'del'; readonly route: RouteInfo }
  | { readonly kind: 'link'; readonly op: 'new' | 'del'; readonly link: KernelLink }
  /** Events were lost (receive buffer overrun): the listener's view is stale. */
  | { readonly kind: 'overrun'; readonly error: Error };

export interface Kernel {
  links(): Promise<KernelLink[]>;
  /** Routes of one family, table and protocol. May reject with EINTR (dump interrupted: retry). */
  routes(filter: RouteFilter): Promise<RouteInfo[]>;
  /**
   * The same routes as routes(), visited without objects (one reused RouteView, valid during
   * the call; toInfo() copies one out). Optional: the reconciler's resync uses it when
   * present (NetlinkKernel), else reads routes() into a view one by one.
   */
  scanRoutes?(filter: RouteFilter, visit: (r: RouteView) => void): Promise<number>;
  /**
   * Applies the writes in order, each independently of the others' failures. Rejects only
   * when the outcome is unknown (socket closed, overrun): then dump again.
   */
  applyRoutes(ops: readonly RouteOp[]): Promise<RouteOpFailure[]>;
  /** Change notifications (routes and links), including those our own writes cause. */
  watch(onEvent: (e: KernelEvent) => void): () => void;
}
