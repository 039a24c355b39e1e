// The CNI plugin run exactly as a container runtime runs it (CNI spec 1.1 §3, "Execution
// protocol"): the executable with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
// CNI_ARGS and CNI_PATH in its environment and the network configuration on stdin, from the
// node's network namespace (`ip netns exec`), as kubelet's runtime does on the host. Shared by
// `npm start` (the demo), the kernel tests and the cluster lab (e2e/).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** packages/cni/bin/tabby.js: the `tabby` plugin (its IPAM runs in-process). */
export const CNI_BIN = fileURLToPath(new URL('../../../../cni/bin/tabby.js', import.meta.url));
/** packages/node/bin/tabby-node.js. */
export const NODE_BIN = fileURLToPath(new URL('../../../bin/tabby-node.js', import.meta.url));

export interface CniInvocation {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
  /** The node's network namespace name (`ip netns exec` runs the plugin in it). */
  readonly nodeNetns: string;
  readonly containerId: string;
  /** The pod's network namespace path, /var/run/netns/<name>. */
  readonly podNetnsPath: string;
  readonly ifname?: string;
  /** Kubernetes pod arguments, as CRI runtimes pass them in CNI_ARGS. */
  readonly pod?: { readonly namespace: string; readonly name: string };
  /** The plugin's network configuration (stdin). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Extra environment (TABBY_MTU_FILE, ...). */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface CniOutcome {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the plugin once and returns its exit status and output. */
export function invokeCni(c: CniInvocation): CniOutcome {
  const r = spawnSync('ip', ['netns', 'exec', c.nodeNetns, process.execPath, CNI_BIN], {
    input: JSON.stringify(c.config),
    encoding: 'utf8',
    timeout: c.timeoutMs ?? 60_000,
    env: {
      ...process.env,
      ...c.env,
      CNI_COMMAND: c.command,
      CNI_CONTAINERID: c.containerId,
      CNI_NETNS: c.podNetnsPath,
      CNI_IFNAME: c.ifname ?? 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: c.pod === undefined ? '' : `K8S_POD_NAMESPACE=${c.pod.namespace};K8S_POD_NAME=${c.pod.name}`,
    },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

/** The pod's IPv4 address from an ADD result (spec 1.x `ips[].address`, "a.b.c.d/32"). */
export function addedAddress(stdout: string): string {
  const ip = (JSON.parse(stdout) as { ips?: { address?: string }[] }).ips?.[0]?.address?.split('/')[0];
  if (ip === undefined) throw new Error(`CNI ADD result without an address: ${stdout}`);
  return ip;
}
