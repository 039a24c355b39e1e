// What tabby-node's start-up reads from Kubernetes (src/kubernetes/startup-reader.ts),
// against the fake API server: the Node's addresses for kubernetes-internal-ip and
// kubeadm-config's podSubnet, each absent as calico-node treats it, and a forbidden
// kubeadm-config taken as "not kubeadm" while other failures stop start-up.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeApiServer, kubeConfigFor } from '@tabby/datastore/testing';
import { KubernetesApi, KubernetesApiError } from '../src/kubernetes/api.js';
import { startupKubernetes } from '../src/kubernetes/startup-reader.js';
import { kubeadmPodCidrs } from '../src/startup/pools.js';

const servers: FakeApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function reader(): Promise<{
  server: FakeApiServer;
  r: ReturnType<typeof startupKubernetes>;
  said: string[];
}> {
  const server = await FakeApiServer.start();
  servers.push(server);
  const said: string[] = [];
  return {
    server,
    r: startupKubernetes(new KubernetesApi(kubeConfigFor(server)), (_l, m) => said.push(m)),
    said,
  };
}

// kubeadm's ClusterConfiguration as `kubeadm init` stores it (kubeadm v1beta3).
const CLUSTER_CONFIGURATION = `apiServer:
  timeoutForControlPlane: 4m0s
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.28.2
networking:
  dnsDomain: cluster.local
  podSubnet: 10.244.0.0/16,fd00:10:244::/56
  serviceSubnet: 10.96.0.0/12
`;

describe('start-up on Kubernetes', () => {
  it('reads_the_nodes_addresses_and_undefined_for_a_node_that_does_not_exist', async () => {
    const { server, r } = await reader();
    server.applyDirect({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'worker-1' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.240.0.7' },
          { type: 'InternalIP', address: 'fd00::7' },
          { type: 'Hostname', address: 'worker-1' },
        ],
      },
    });
    assert.deepEqual(await r.nodeAddresses('worker-1'), [
      { type: 'InternalIP', address: '10.240.0.7' },
      { type: 'InternalIP', address: 'fd00::7' },
      { type: 'Hostname', address: 'worker-1' },
    ]);
    assert.equal(await r.nodeAddresses('worker-9'), undefined);
  });

  it('reads_kubeadm_config_and_treats_missing_or_forbidden_as_not_kubeadm', async () => {
    const { server, r, said } = await reader();
    assert.equal(await r.kubeadmConfig(), undefined);
    server.applyDirect({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kubeadm-config', namespace: 'kube-system' },
      data: { ClusterConfiguration: CLUSTER_CONFIGURATION },
    });
    const data = await r.kubeadmConfig();
    assert.deepEqual(kubeadmPodCidrs(data!), { 4: '10.244.0.0/16', 6: 'fd00:10:244::/56' });
    server.failNext(1, 403);
    assert.equal(await r.kubeadmConfig(), undefined);
    assert.match(said.join('\n'), /forbidden.*assuming not on kubeadm/);
    // Anything else stops start-up, as in calico-node (utils.Terminate).
    server.failNext(1, 500);
    await assert.rejects(
      r.kubeadmConfig(),
      (e: unknown) => e instanceof KubernetesApiError && e.code === 500,
    );
    server.failNext(1, 503);
    await assert.rejects(
      r.nodeAddresses('worker-1'),
      (e: unknown) => e instanceof KubernetesApiError && e.code === 503,
    );
  });
});
