// Which datastore to use, from flags and environment, with Calico's variable names where
// Calico has them (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_*_FILE, ETCD_USERNAME/PASSWORD,
// KUBECONFIG), so a calico-node environment carries over. The YAML directory is the
// default: nothing to set up.

export type DatastoreConfig =
  | { readonly type: 'yaml'; readonly dir: string }
  | {
      readonly type: 'etcdv3';
      readonly endpoints: readonly string[];
      readonly prefix?: string;
      readonly caFile?: string;
      readonly certFile?: string;
      readonly keyFile?: string;
      readonly username?: string;
      readonly password?: string;
    }
  | { readonly type: 'kubernetes'; readonly kubeconfig?: string };

export const DEFAULT_YAML_DIR = '/etc/tabby/datastore';

export class DatastoreConfigError extends Error {
  override readonly name = 'DatastoreConfigError';
}

/**
 * `flags` are the command line's `--datastore-type`, `--datastore-dir`, `--etcd-endpoints`,
 * `--kubeconfig` (flags win over the environment).
 */
export function datastoreConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: Readonly<Record<string, string | undefined>> = {},
): DatastoreConfig {
  const pick = (flag: string, ...vars: string[]): string | undefined => {
    const f = flags[flag];
    if (f !== undefined && f !== '') return f;
    for (const v of vars) {
      const e = env[v];
      if (e !== undefined && e !== '') return e;
    }
    return undefined;
  };
  const type = pick('datastore-type', 'DATASTORE_TYPE') ?? 'yaml';
  switch (type) {
    case 'yaml':
    case 'directory':
      return { type: 'yaml', dir: pick('datastore-dir', 'TABBY_DATASTORE_DIR') ?? DEFAULT_YAML_DIR };
    case 'etcd':
    case 'etcdv3': {
      const endpoints = (pick('etcd-endpoints', 'ETCD_ENDPOINTS') ?? '')
        .split(',')
        .map((e) => e.trim())
        .filter((e) => e !== '');
      if (endpoints.length === 0)
        throw new DatastoreConfigError(
          'DATASTORE_TYPE=etcdv3 needs ETCD_ENDPOINTS (or --etcd-endpoints), e.g. http://127.0.0.1:2379',
        );
      for (const e of endpoints)
        if (!/^https?:\/\/[^/]+\/?$/.test(e))
          throw new DatastoreConfigError(
            `ETCD_ENDPOINTS: ${JSON.stringify(e)} is not an http:// or https:// URL`,
          );
      const opt = (k: string, v: string | undefined) => (v === undefined ? {} : { [k]: v });
      return {
        type: 'etcdv3',
        endpoints,
        ...opt('prefix', pick('etcd-prefix', 'TABBY_ETCD_PREFIX')),
        ...opt('caFile', pick('etcd-ca-cert-file', 'ETCD_CA_CERT_FILE')),
        ...opt('certFile', pick('etcd-cert-file', 'ETCD_CERT_FILE')),
        ...opt('keyFile', pick('etcd-key-file', 'ETCD_KEY_FILE')),
        ...opt('username', pick('etcd-username', 'ETCD_USERNAME')),
        ...opt('password', pick('etcd-password', 'ETCD_PASSWORD')),
      };
    }
    case 'kubernetes': {
      const kubeconfig = pick('kubeconfig', 'KUBECONFIG');
      return kubeconfig === undefined ? { type: 'kubernetes' } : { type: 'kubernetes', kubeconfig };
    }
    default:
      throw new DatastoreConfigError(
        `DATASTORE_TYPE (or --datastore-type) must be yaml, etcdv3 or kubernetes, not ${JSON.stringify(type)}`,
      );
  }
}
