/**
 * What calico-node's `-startup` and `-allocate-tunnel-addrs` do, as a library the daemon calls
 * once before it starts its watches: settings → addresses → register → pools → tunnel
 * addresses.
 *
 * ```ts
 * const client = RtnlClient.open();
 * const r = await runStartup({
 *   env: process.env,
 *   datastore: new Datastore(backend),
 *   ipam: new Ipam({ backend }),
 *   host: new NetlinkHostNetwork(client),
 *   system: localSystem,
 * });
 * // r.nodeName, r.ipv4?.cidr, r.asNumber, r.node
 * ```
 *
 * @packageDocumentation
 */
import type { Datastore, Ipam, Node } from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';
import { silentLogger } from '@tabby/ipip';
import type { HostAddresses } from './addresses.js';
import { detectAddresses } from './addresses.js';
import type { KubernetesNodeAddress } from './autodetect.js';
import type { StartupStep } from './errors.js';
import { StartupStepError } from './errors.js';
import type { HostNetwork } from './host-network.js';
import { parseIpNet } from './ipnet.js';
import type { DefaultPools } from './pools.js';
import { ensureDefaultPools } from './pools.js';
import type { Registration } from './register.js';
import { registerNode } from './register.js';
import type { Env, Settings } from './settings.js';
import { resolveSettings } from './settings.js';
import type { StartupSystem } from './system.js';
import type { TunnelAddresses } from './tunnel-addresses.js';
import { reconcileTunnelAddresses } from './tunnel-addresses.js';
import { asNumberValue, formatIp } from '@tabby/datastore';

export * from './errors.js';
export * from './ipnet.js';
export * from './host-network.js';
export * from './interfaces.js';
export * from './autodetect.js';
export * from './settings.js';
export * from './addresses.js';
export * from './register.js';
export * from './pools.js';
export * from './tunnel-addresses.js';
export * from './system.js';

/** What start-up reads from Kubernetes, when it runs there (Calico reads both at start, startup.go:166). */
export interface StartupKubernetes {
  /** The Kubernetes Node's status.addresses; undefined when there is no such Node. */
  nodeAddresses(name: string): Promise<readonly KubernetesNodeAddress[] | undefined>;
  /** kube-system/kubeadm-config's data; undefined when there is no such ConfigMap. */
  kubeadmConfig(): Promise<Readonly<Record<string, string>> | undefined>;
}

export interface StartupDeps {
  readonly env: Env;
  /** The YAML settings file (its path is for messages). */
  readonly configFile?: { readonly path: string; readonly text: string };
  /** Command-line flags by name without dashes (e.g. `ip-autodetection-method`). */
  readonly flags?: Readonly<Record<string, string>>;
  readonly datastore: Datastore;
  readonly ipam: Ipam;
  readonly host: HostNetwork;
  readonly system: StartupSystem;
  /** Absent when not on Kubernetes (then kubernetes-internal-ip has nothing to read). */
  readonly kubernetes?: StartupKubernetes;
  readonly randomBytes?: (n: number) => Uint8Array;
  readonly logger?: Logger;
}

export interface NodeAddress {
  /** "192.168.1.11" */
  readonly address: string;
  readonly prefixLen: number;
  /** As on the Node: "192.168.1.11/24". */
  readonly cidr: string;
}

export interface StartupResult {
  readonly settings: Settings;
  readonly nodeName: string;
  readonly ipv4: NodeAddress | undefined;
  readonly ipv6: NodeAddress | undefined;
  /** The Node's own AS; undefined: BGPConfiguration's asNumber (default 64512) applies. */
  readonly asNumber: number | undefined;
  /** The Node after start-up (undefined only with networking backend none and no Node). */
  readonly node: Node | undefined;
  readonly registration: Registration['written'];
  readonly pools: DefaultPools;
  /** Undefined when there is no Node to give them to. */
  readonly tunnelAddresses: TunnelAddresses | undefined;
}

async function step<T>(name: StartupStep, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new StartupStepError(name, e);
  }
}

function nodeAddress(text: string | undefined): NodeAddress | undefined {
  const n = text === undefined ? undefined : parseIpNet(text);
  return n === undefined ? undefined : { address: formatIp(n.address), prefixLen: n.prefixLen, cidr: text! };
}

/** Runs start-up; a failure is a StartupStepError naming the step, with the step's typed error as cause. */
export async function runStartup(deps: StartupDeps): Promise<StartupResult> {
  const log = deps.logger ?? silentLogger;
  const settings = await step('settings', () => {
    const r = resolveSettings({
      env: deps.env,
      ...(deps.configFile === undefined ? {} : { file: deps.configFile }),
      ...(deps.flags === undefined ? {} : { flags: deps.flags }),
      readNodenameFile: (p) => deps.system.readFile(p),
      hostname: () => deps.system.hostname(),
    });
    if (!r.ok) throw r.error;
    return r.settings;
  });
  log.info({ node: settings.nodeName, source: settings.nodeNameSource }, 'starting node');

  const host: HostAddresses = await step('addresses', async () => {
    const k8s =
      deps.kubernetes === undefined
        ? undefined
        : await deps.kubernetes.nodeAddresses(settings.kubernetesNodeName);
    return detectAddresses(settings, deps.host, k8s, log);
  });

  const reg = await step('register', () => registerNode({ datastore: deps.datastore, settings, host, log }));

  const pools = await step('pools', async () =>
    ensureDefaultPools({
      datastore: deps.datastore,
      settings,
      // Read again only if start-up did not (networking backend none).
      interfaces: async () => (host.interfaces.length > 0 ? host.interfaces : deps.host.interfaces()),
      kubeadmConfig: await deps.kubernetes?.kubeadmConfig(),
      ipv6Available: deps.system.ipv6Available(),
      ...(deps.randomBytes === undefined ? {} : { randomBytes: deps.randomBytes }),
      log,
    }),
  );

  // utils.WriteNodeConfig (startup.go:246): the next start finds the same name here.
  await step('nodename-file', () => deps.system.writeFile(settings.nodenameFile, settings.nodeName));

  const tunnelAddresses =
    reg.node === undefined
      ? undefined
      : await step('tunnel-addresses', () =>
          reconcileTunnelAddresses({
            datastore: deps.datastore,
            ipam: deps.ipam,
            nodeName: settings.nodeName,
            log,
          }),
        );
  const node = tunnelAddresses?.node ?? reg.node;
  const as = node?.spec.bgp?.asNumber;
  return {
    settings,
    nodeName: settings.nodeName,
    ipv4: nodeAddress(node?.spec.bgp?.ipv4Address),
    ipv6: nodeAddress(node?.spec.bgp?.ipv6Address),
    asNumber: as === undefined ? undefined : asNumberValue(as),
    node,
    registration: reg.written,
    pools,
    tunnelAddresses,
  };
}
