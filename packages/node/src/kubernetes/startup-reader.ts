// What calico-node's start-up reads from Kubernetes (startup.go in v3.31.7, lines 156-218):
// the Kubernetes Node's addresses, for IP_AUTODETECTION_METHOD=kubernetes-internal-ip, and
// kube-system/kubeadm-config, whose podSubnet is the default pool's CIDR when none is set.
// As there: a kubeadm-config that is missing or that RBAC hides means "not kubeadm"; any
// other failure stops start-up (it is retried by the restart), and so does a Node that cannot
// be read (a missing Node is for start-up to judge: undefined).
import type { KubernetesNodeAddress } from '../startup/autodetect.js';
import type { StartupKubernetes } from '../startup/index.js';
import type { KubernetesApi } from './api.js';
import { KubernetesApiError } from './api.js';

const notFound = (e: unknown): boolean => e instanceof KubernetesApiError && e.code === 404;

export function startupKubernetes(
  api: KubernetesApi,
  log?: (level: 'info', msg: string) => void,
): StartupKubernetes {
  return {
    async nodeAddresses(name: string): Promise<readonly KubernetesNodeAddress[] | undefined> {
      let node: unknown;
      try {
        node = await api.get(`reading Node ${name}`, `/api/v1/nodes/${encodeURIComponent(name)}`);
      } catch (e) {
        if (notFound(e)) return undefined;
        throw e;
      }
      const list = (node as { status?: { addresses?: unknown } }).status?.addresses;
      if (!Array.isArray(list)) return [];
      return list.flatMap((a: unknown): KubernetesNodeAddress[] => {
        const { type, address } = (a ?? {}) as { type?: unknown; address?: unknown };
        return typeof type === 'string' && typeof address === 'string' ? [{ type, address }] : [];
      });
    },

    async kubeadmConfig(): Promise<Readonly<Record<string, string>> | undefined> {
      let cm: unknown;
      try {
        cm = await api.get(
          'reading ConfigMap kube-system/kubeadm-config',
          '/api/v1/namespaces/kube-system/configmaps/kubeadm-config',
        );
      } catch (e) {
        if (notFound(e)) return undefined;
        if (e instanceof KubernetesApiError && (e.code === 401 || e.code === 403)) {
          log?.('info', `${e.message}: assuming not on kubeadm (no pod CIDR from it)`);
          return undefined;
        }
        throw e;
      }
      const data = (cm as { data?: unknown }).data;
      const out: Record<string, string> = {};
      if (typeof data === 'object' && data !== null)
        for (const [k, v] of Object.entries(data)) if (typeof v === 'string') out[k] = v;
      return out;
    },
  };
}
