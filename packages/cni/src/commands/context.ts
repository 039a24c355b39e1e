// What one invocation's handler gets: the parsed environment and config, and the world.
import type { NetConf } from '../spec/config.js';
import type { CniEnv } from '../spec/env.js';
import type { Dataplane, EndpointStore, IpamClient, NamespaceReader, PluginExec } from './interfaces.js';

export type Log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;

/** Which IPAM serves this network: Tabby's own (in-process), or a plugin run from CNI_PATH. */
export type Ipam =
  | { readonly kind: 'tabby'; readonly client: IpamClient }
  | { readonly kind: 'delegated'; readonly type: string; readonly exec: PluginExec };

export interface Ctx {
  readonly env: CniEnv;
  readonly conf: NetConf;
  readonly log: Log;
  readonly now: () => Date;
}

export interface IpamCtx extends Ctx {
  /** Undefined when the config has no `ipam` (DEL, CHECK: nothing was allocated). */
  readonly ipam: Ipam | undefined;
  readonly node: string;
  /** For IPPool namespaceSelector (Tabby's IPAM asks only when a pool has one). */
  readonly readNamespace: NamespaceReader;
}

export interface AttachmentCtx extends IpamCtx {
  readonly dataplane: Dataplane;
  /** Where the pod's WorkloadEndpoint is written (ADD), compared (CHECK), deleted (DEL). */
  readonly endpoints: EndpointStore;
  /** The MTU file the node daemon writes (./mtu.ts). */
  readonly mtuFile: string;
}
