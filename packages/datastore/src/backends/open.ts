// A DatastoreConfig (from flags and environment) to an open Backend. Each backend is
// imported only when chosen: the Kubernetes and etcd clients cost most of a second to load,
// which a short-lived process (the CNI plugin, `tabby get`) on the YAML directory never needs.
import type { Backend } from '../store/backend.js';
import type { DatastoreConfig } from './config.js';
import type { KubernetesBackendOptions } from './kubernetes/index.js';

export async function openBackend(c: DatastoreConfig): Promise<Backend> {
  switch (c.type) {
    case 'yaml': {
      const { YamlDirBackend } = await import('./yaml/index.js');
      return YamlDirBackend.open({ root: c.dir });
    }
    case 'etcdv3': {
      const { EtcdBackend } = await import('./etcd/index.js');
      return new EtcdBackend({
        endpoints: c.endpoints,
        ...(c.prefix === undefined ? {} : { prefix: c.prefix }),
        ...(c.caFile === undefined
          ? {}
          : {
              tls: {
                caFile: c.caFile,
                ...(c.certFile === undefined ? {} : { certFile: c.certFile }),
                ...(c.keyFile === undefined ? {} : { keyFile: c.keyFile }),
              },
            }),
        ...(c.username === undefined ? {} : { auth: { username: c.username, password: c.password ?? '' } }),
      });
    }
    case 'kubernetes': {
      const { KubernetesBackend } = await import('./kubernetes/index.js');
      return new KubernetesBackend(
        c.kubeconfig === undefined ? { defaults: true } : { kubeconfigPath: c.kubeconfig },
      );
    }
  }
}

/**
 * The labels of the Kubernetes Namespace `name`, read with the kubeconfig file at
 * `kubeconfig` (the CNI plugin's IPPool namespaceSelector); the Kubernetes client is loaded
 * only here. Errors as KubernetesBackend's: NotFoundError, UnavailableError.
 */
export async function readNamespaceLabels(
  kubeconfig: string,
  name: string,
  options: KubernetesBackendOptions = {},
): Promise<Record<string, string>> {
  const { KubernetesBackend } = await import('./kubernetes/index.js');
  const b = new KubernetesBackend({ kubeconfigPath: kubeconfig }, options);
  try {
    return await b.namespaceLabels(name);
  } finally {
    await b.close();
  }
}
