// Helpers for the Kubernetes backend tests: a KubeConfig that points at the fake API server.
import { KubeConfig } from '@kubernetes/client-node';
import type { FakeApiServer } from './fake-apiserver.js';

/**
 * A KubeConfig for `server`. Over plain http client-node insists on skipTLSVerify (it refuses
 * http otherwise), which is all that flag does here: there is no TLS to verify.
 */
export function kubeConfigFor(server: FakeApiServer, token?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: server.url, skipTLSVerify: server.url.startsWith('http:') }],
    users: [token === undefined ? { name: 'tester' } : { name: 'tester', token }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
    currentContext: 'fake',
  });
  return kc;
}
