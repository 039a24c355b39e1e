// tabby-node: the process. Reads its settings (flags over environment, Calico's names where
// they exist), opens the datastore, starts the daemon core, the control socket and HTTP, and
// stops cleanly: SIGTERM/SIGINT keep the kernel's routes and close BGP sessions without a
// NOTIFICATION, so graceful-restart peers keep forwarding to this node while it restarts.
import { readFileSync } from 'node:fs';
import { openBackend, datastoreConfig, Datastore, DatastoreConfigError, Ipam } from '@tabby/datastore';
import { RtnlClient, setSysctlRoot } from '@tabby/netlink';
import { KubernetesBackend, loadKubeConfig } from '@tabby/datastore/kubernetes';
import { Speaker } from 'bgp-ts/speaker';
import pino from 'pino';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { kernelDataplaneOnce } from '@tabby/cni/serve-run';
import { DEFAULT_SOCKET } from './cli/status.js';
import type { Dataplane } from './daemon/node-daemon.js';
import { NodeDaemon } from './daemon/node-daemon.js';
import { DaemonServer } from './daemon/server.js';
import { FelixDataplane } from './dataplane/felix.js';
import { KubernetesObjectsWatcher, secretsNamespace } from './kubernetes/objects-watcher.js';
import { kubernetesNodeName, NodeCondition } from './kubernetes/node-condition.js';
import { KubernetesApi } from './kubernetes/api.js';
import { startupKubernetes } from './kubernetes/startup-reader.js';
import { bgpEnvironment } from './cli/render.js';
import type { StartupResult } from './startup/index.js';
import {
  NetlinkHostNetwork,
  SETTINGS_FIELDS,
  StartupStepError,
  localSystem,
  runStartup,
} from './startup/index.js';

export const NODE_USAGE = `usage: tabby-node [flags]

  --socket PATH          control socket for tabby status / routes (TABBY_NODE_SOCKET; ${DEFAULT_SOCKET})
  --http HOST:PORT       /metrics, /healthz, /readyz (TABBY_HTTP; 127.0.0.1:9099; "none": off)
  --bgp-listen HOST      BGP listen address when bindMode is not NodeIP (default ::)
  --log-level LEVEL      fatal|error|warn|info|debug (TABBY_LOG_LEVEL; info)
  --dataplane MODE       kernel: program routes, tunnels, neighbours, NAT (default as root);
                         none: BGP only (default otherwise) (TABBY_DATAPLANE)
  --mtu-file PATH        where the pod MTU goes for the CNI plugin (TABBY_MTU_FILE; /var/lib/tabby/mtu)
  --proc-sys DIR         the sysctl tree, when not /proc/sys: a container that is not privileged
                         gets the host's /proc/sys/net mounted at DIR/net (TABBY_PROC_SYS)
  --config FILE          start-up settings as YAML (flags, then the file, then the environment)
  start-up flags         --node, --ip, --ip6, --ip-autodetection-method, --as, --nodename-file, ...:
                         every calico-node setting, also by its environment name (NODENAME, IP,
                         IP_AUTODETECTION_METHOD, AS, CALICO_IPV4POOL_CIDR, ...; docs/node-daemon.md)
  datastore flags        as for tabby: --datastore-type, --datastore-dir, --etcd-endpoints, --kubeconfig
`;

export class NodeUsageError extends Error {}

export interface NodeSettings {
  readonly socketPath: string;
  readonly http?: { readonly host: string; readonly port: number };
  readonly bgpListen?: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug';
  readonly datastoreFlags: Readonly<Record<string, string>>;
  /** Start-up's flags (SETTINGS_FIELDS), by name without dashes. */
  readonly startupFlags: Readonly<Record<string, string>>;
  readonly configFile?: string;
  readonly dataplane: 'kernel' | 'none';
  readonly mtuFile?: string;
  /** The sysctl tree when not /proc/sys (a bind of the host's, in a container that is not privileged). */
  readonly procSys?: string;
}

const OWN = new Set([
  'socket',
  'http',
  'bgp-listen',
  'log-level',
  'config',
  'dataplane',
  'mtu-file',
  'proc-sys',
]);
const DATASTORE = new Set(['datastore-type', 'datastore-dir', 'etcd-endpoints', 'kubeconfig']);
const STARTUP = new Set<string>(Object.values(SETTINGS_FIELDS).map((f) => f.flag));

/** Flags over environment; every bad value is a NodeUsageError naming it. */
export function nodeSettings(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeSettings {
  const own: Record<string, string> = {};
  const datastoreFlags: Record<string, string> = {};
  const startupFlags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(argv[i]!);
    const name = m?.[1];
    if (m === null || name === undefined || !(OWN.has(name) || DATASTORE.has(name) || STARTUP.has(name)))
      throw new NodeUsageError(`unknown argument ${JSON.stringify(argv[i])}`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new NodeUsageError(`--${name} needs a value`);
    (OWN.has(name) ? own : DATASTORE.has(name) ? datastoreFlags : startupFlags)[name] = v;
  }
  const pick = (flag: string, ...vars: string[]): string | undefined =>
    own[flag] ?? vars.map((v) => env[v]).find((v) => v !== undefined && v !== '');
  const httpText = pick('http', 'TABBY_HTTP') ?? '127.0.0.1:9099';
  let http: NodeSettings['http'];
  if (httpText !== 'none') {
    const m = /^(.*):(\d{1,5})$/.exec(httpText);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || port > 65535)
      throw new NodeUsageError(`--http (TABBY_HTTP): ${JSON.stringify(httpText)} is not HOST:PORT or none`);
    http = { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  const logLevel = pick('log-level', 'TABBY_LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug'].includes(logLevel))
    throw new NodeUsageError(
      `--log-level (TABBY_LOG_LEVEL): ${JSON.stringify(logLevel)} is not fatal, error, warn, info or debug`,
    );
  const bgpListen = pick('bgp-listen');
  const configFile = pick('config');
  const dataplane = pick('dataplane', 'TABBY_DATAPLANE') ?? (process.getuid?.() === 0 ? 'kernel' : 'none');
  if (dataplane !== 'kernel' && dataplane !== 'none')
    throw new NodeUsageError(
      `--dataplane (TABBY_DATAPLANE): ${JSON.stringify(dataplane)} is not kernel or none`,
    );
  const mtuFile = pick('mtu-file', 'TABBY_MTU_FILE');
  const procSys = pick('proc-sys', 'TABBY_PROC_SYS');
  if (procSys !== undefined && !procSys.startsWith('/'))
    throw new NodeUsageError(
      `--proc-sys (TABBY_PROC_SYS): ${JSON.stringify(procSys)} is not an absolute path`,
    );
  return {
    socketPath: pick('socket', 'TABBY_NODE_SOCKET') ?? DEFAULT_SOCKET,
    ...(http !== undefined ? { http } : {}),
    ...(bgpListen !== undefined ? { bgpListen } : {}),
    logLevel: logLevel as NodeSettings['logLevel'],
    datastoreFlags,
    startupFlags,
    ...(configFile !== undefined ? { configFile } : {}),
    dataplane,
    ...(mtuFile !== undefined ? { mtuFile } : {}),
    ...(procSys !== undefined ? { procSys } : {}),
  };
}

export interface RunningNode {
  readonly daemon: NodeDaemon;
  readonly server: DaemonServer;
  readonly log: Logger;
  stop(): Promise<void>;
}

export async function runNode(
  settings: NodeSettings,
  env: Readonly<Record<string, string | undefined>>,
  opts: { readonly dataplane?: Dataplane; readonly logDestination?: NodeJS.WritableStream } = {},
): Promise<RunningNode> {
  const log = pino(
    { level: settings.logLevel, base: { name: 'tabby-node' } },
    opts.logDestination ?? process.stdout,
  );
  if (settings.procSys !== undefined) setSysctlRoot(settings.procSys);
  const datastoreCfg = datastoreConfig(env, settings.datastoreFlags);
  const backend = await openBackend(datastoreCfg);
  const datastore = new Datastore(backend, {
    onInvalid: (issues) => {
      for (const i of issues)
        log.warn({ resource: i.resource, path: i.path }, `skipped an invalid resource: ${i.reason}`);
    },
  });
  // On Kubernetes (the datastore is, or a kubeconfig / in-cluster config is at hand): start-up
  // reads the Kubernetes Node's addresses and kubeadm's pod CIDR; then Secrets, Services,
  // EndpointSlices and Node labels from the API, and the Node's NetworkUnavailable.
  const kc =
    backend instanceof KubernetesBackend
      ? backend.kubeConfig
      : (env['KUBECONFIG'] ?? '') !== '' || (env['KUBERNETES_SERVICE_HOST'] ?? '') !== ''
        ? loadKubeConfig({ defaults: true })
        : undefined;
  // calico-node's start-up: settings, addresses, the Node resource, default pools, tunnel addresses.
  const netlink = RtnlClient.open();
  let startup: StartupResult;
  try {
    startup = await runStartup({
      env,
      ...(settings.configFile !== undefined
        ? { configFile: { path: settings.configFile, text: readFileSync(settings.configFile, 'utf8') } }
        : {}),
      flags: settings.startupFlags,
      datastore,
      ipam: new Ipam({ backend }),
      host: new NetlinkHostNetwork(netlink),
      system: localSystem,
      ...(kc !== undefined
        ? { kubernetes: startupKubernetes(new KubernetesApi(kc), (l, m) => log[l](m)) }
        : {}),
      logger: log,
    });
  } catch (e) {
    netlink.close();
    await backend.close();
    throw e;
  }
  netlink.close();
  const registry = new Registry();
  const dataplane =
    opts.dataplane ??
    (settings.dataplane === 'kernel'
      ? new FelixDataplane({
          registry,
          ...(settings.mtuFile !== undefined ? { mtuFile: settings.mtuFile } : {}),
          log: (level, msg, fields) => log[level](fields ?? {}, msg),
        })
      : undefined);
  const kubernetes =
    kc === undefined
      ? undefined
      : new KubernetesObjectsWatcher({
          kubeConfig: kc,
          namespace: secretsNamespace(env),
          log: (l, m) => log[l](m),
        });
  const condition =
    kc === undefined || env['CALICO_NETWORKING_BACKEND'] === 'none'
      ? undefined
      : new NodeCondition({
          kubeConfig: kc,
          nodeName: kubernetesNodeName(env, startup.nodeName),
          log: (l, m) => log[l](m),
        });
  const daemon = new NodeDaemon({
    ...(kubernetes !== undefined ? { kubernetes } : {}),
    ...(condition !== undefined ? { onRoutesProgrammed: () => void condition.routesProgrammed() } : {}),
    datastore,
    nodeName: startup.nodeName,
    env: {
      ...bgpEnvironment(env),
      ...(startup.settings.routerId !== undefined ? { CALICO_ROUTER_ID: startup.settings.routerId } : {}),
    },
    createSpeaker: (config, events) => new Speaker(config, {}, events),
    ...(dataplane !== undefined ? { dataplane } : {}),
    ...(settings.bgpListen !== undefined ? { listenHost: settings.bgpListen } : {}),
    registry,
    ipamUtilization: () => new Ipam({ backend }).getUtilization(),
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  daemon.start();
  condition?.start();
  const server = new DaemonServer({
    daemon,
    socketPath: settings.socketPath,
    ...(settings.http !== undefined ? { http: { ...settings.http, registry } } : {}),
    ...(dataplane instanceof FelixDataplane ? { programmed: () => dataplane.programmed() } : {}),
    // The CNI plugin's IPAM and WorkloadEndpoint work, on this datastore.
    cni: {
      datastore,
      ipam: new Ipam({ backend, log: (l, m) => log[l](m) }),
      config: datastoreCfg,
      // Whole ADD/DEL/CHECK invocations, with the kernel: as root, and able to enter the
      // pods' network namespaces (setns needs CAP_SYS_ADMIN); else the plugin does them.
      ...(process.getuid?.() === 0 && hasCapability(CAP_SYS_ADMIN)
        ? {
            invocations: {
              dataplane: kernelDataplaneOnce(),
              ...(settings.mtuFile !== undefined ? { mtuFile: settings.mtuFile } : {}),
            },
          }
        : {}),
    },
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  try {
    await server.start();
  } catch (e) {
    // Nothing may outlive a start that failed: the speaker and the watches would keep the
    // process up without its socket (as PID 1 in a container, a pod that never restarts).
    condition?.stop();
    await daemon.stop();
    if (dataplane instanceof FelixDataplane) await dataplane.stop();
    await server.stop().catch(() => undefined);
    await backend.close();
    throw e;
  }
  log.info(
    {
      dataplane: dataplane === undefined ? 'none' : 'kernel',
      node: startup.nodeName,
      ipv4: startup.ipv4?.cidr,
      ipv6: startup.ipv6?.cidr,
      socket: settings.socketPath,
      http: settings.http,
      datastore: backend.type,
    },
    'started',
  );
  let stopping: Promise<void> | undefined;
  return {
    daemon,
    server,
    log,
    stop: () =>
      (stopping ??= (async () => {
        condition?.stop();
        await daemon.stop();
        // The kernel keeps its routes: a restart adopts them without a blip.
        if (dataplane instanceof FelixDataplane) await dataplane.stop();
        await server.stop();
        await backend.close();
        log.info('stopped');
      })()),
  };
}

const CAP_SYS_ADMIN = 21;

/** Whether this process has the capability in its effective set (/proc/self/status CapEff). */
function hasCapability(bit: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]!}`) & (1n << BigInt(bit))) !== 0n;
  } catch {
    return false;
  }
}

/** The process: exit code 2 for usage errors, 1 for failures at start. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let settings: NodeSettings;
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(NODE_USAGE);
      return 0;
    }
    settings = nodeSettings(argv, env);
  } catch (e) {
    if (!(e instanceof NodeUsageError)) throw e;
    process.stderr.write(`tabby-node: ${e.message}\n\n${NODE_USAGE}`);
    return 2;
  }
  // A signal during start-up ends the process at once (as PID 1 nothing else would).
  const early = (): void => process.exit(143);
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  let node: RunningNode;
  try {
    node = await runNode(settings, env);
  } catch (e) {
    process.stderr.write(
      `tabby-node: ${e instanceof DatastoreConfigError || e instanceof StartupStepError ? e.message : (e as Error).stack}\n`,
    );
    return 1;
  } finally {
    process.removeListener('SIGTERM', early);
    process.removeListener('SIGINT', early);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      node.log.info({ signal }, 'stopping: kernel routes stay, peers keep ours (graceful restart)');
      void node.stop().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
