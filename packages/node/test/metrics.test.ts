// The node's own metrics when the datastore is unreachable: the scrape still answers, every
// other series with it, and the IPAM gauge keeps what it last read (found by the cluster
// lab's etcd outage, e2e/: before, every scrape failed with HTTP 500 for as long as etcd was down).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Utilization } from '@tabby/datastore';
import { NodeMetrics } from '../src/daemon/metrics.js';

describe('node metrics', () => {
  it('a_datastore_outage_keeps_the_last_ipam_values_and_fails_no_scrape', async () => {
    const registry = new Registry();
    let reachable = true;
    let inUse = 3;
    const usage = (): Utilization =>
      ({
        pools: [{ cidr: '10.65.0.0/16', inUse, free: 65536 - inUse }],
        orphanBlocks: [],
        nodes: [{ node: 'n1', inUse, borrowed: 0, blocks: 1 }],
      }) as unknown as Utilization;
    new NodeMetrics(
      registry,
      () => ({ health: { synced: true, errors: { IPAMBlock: 2 } }, learned: 7, ready: true }),
      {
        nodeName: 'n1',
        utilization: () =>
          reachable ? Promise.resolve(usage()) : Promise.reject(new Error('etcd: UNAVAILABLE')),
      },
    );
    assert.match(
      await registry.metrics(),
      /tabby_node_ipam_addresses\{pool="10\.65\.0\.0\/16",state="in_use"\} 3/,
    );
    reachable = false;
    inUse = 9;
    const during = await registry.metrics();
    assert.match(during, /tabby_node_learned_routes 7/);
    assert.match(during, /tabby_node_ipam_addresses\{pool="10\.65\.0\.0\/16",state="in_use"\} 3/);
    reachable = true;
    assert.match(
      await registry.metrics(),
      /tabby_node_ipam_addresses\{pool="10\.65\.0\.0\/16",state="in_use"\} 9/,
    );
  });
});
