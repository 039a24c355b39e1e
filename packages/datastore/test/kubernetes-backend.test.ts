// The Kubernetes backend against the shared Backend contract, talking HTTP to an in-process
// API server that follows the documented API semantics (src/testing/fake-apiserver.ts).
import { KubernetesBackend } from '../src/backends/kubernetes/index.js';
import { backendConformance } from './conformance/suite.js';
import { FakeApiServer } from '../src/testing/fake-apiserver.js';
import { kubeConfigFor } from '../src/testing/kube.js';

backendConformance(
  'kubernetes (in-process API server)',
  async () => {
    const server = await FakeApiServer.start();
    const backend = new KubernetesBackend(kubeConfigFor(server));
    return {
      backend,
      second: () => Promise.resolve(new KubernetesBackend(kubeConfigFor(server))),
      cleanup: async () => {
        await backend.close();
        await server.close();
      },
    };
  },
  { shared: true },
);
