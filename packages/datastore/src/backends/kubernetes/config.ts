// Where the Kubernetes backend finds its API server and credentials: in-cluster (the pod's
// service account), a kubeconfig file, the default loading rules, or a ready KubeConfig.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** The service account files kubelet mounts into every pod that has a token. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubernetesConnection =
  /**
   * In a pod: KUBERNETES_SERVICE_HOST/PORT, the service account token and CA. `root` is a
   * prefix for the mount path (tests); the token file is re-read by client-node's FileAuth
   * at most every 60 s, so kubelet's token rotation is picked up.
   */
  | { readonly inCluster: true; readonly root?: string }
  /** A kubeconfig file; its current context unless `context` names another. */
  | { readonly kubeconfigPath: string; readonly context?: string }
  /** $KUBECONFIG, then ~/.kube/config, then in-cluster (client-node's default loading rules). */
  | { readonly defaults: true };

/** The API server URL of the current context, for logs and errors. */
export function serverOf(kc: KubeConfig): string {
  const c = kc.getCurrentCluster();
  if (c === null) throw new Error('the Kubernetes config has no current cluster (check current-context)');
  return c.server;
}

export function loadKubeConfig(conn: KubernetesConnection): KubeConfig {
  const kc = new KubeConfig();
  if ('inCluster' in conn) {
    const host = process.env['KUBERNETES_SERVICE_HOST'];
    const port = process.env['KUBERNETES_SERVICE_PORT'];
    if (host === undefined || host === '' || port === undefined || port === '')
      throw new Error(
        'in-cluster Kubernetes config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)',
      );
    const dir = join(conn.root ?? '', SERVICE_ACCOUNT_DIR);
    for (const f of ['token', 'ca.crt']) {
      try {
        accessSync(join(dir, f), constants.R_OK);
      } catch (e) {
        throw new Error(
          `in-cluster Kubernetes config: cannot read ${join(dir, f)} (no service account token mounted?)`,
          {
            cause: e,
          },
        );
      }
    }
    kc.loadFromCluster(conn.root ?? '');
  } else if ('kubeconfigPath' in conn) {
    kc.loadFromFile(conn.kubeconfigPath);
    if (conn.context !== undefined) {
      if (kc.getContextObject(conn.context) === null)
        throw new Error(`kubeconfig ${conn.kubeconfigPath} has no context named ${conn.context}`);
      kc.setCurrentContext(conn.context);
    }
  } else {
    kc.loadFromDefault();
  }
  serverOf(kc);
  return kc;
}
