// npm start's main job, run to convergence (--once): four tabby-node processes and six pods.
// As root: nodes and pods in network namespaces, pods made by the CNI plugin, real kernel
// routes, and every pod pings every other; on loopback: the routes each node would program.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { needKernel } from '@tabby/netlink/testing';
import { runDemo } from '../src/demo/cluster.js';

describe('npm start (the demo cluster)', () => {
  it('on loopback: converges and shows each node the routes it would program', async () => {
    let out = '';
    const code = await runDemo({ once: true, loopback: true, out: (s) => (out += s) });
    assert.equal(code, 0, out);
    assert.match(out, /converged/);
    for (const n of ['node1', 'node2', 'node3']) {
      assert.match(
        out,
        new RegExp(
          `===== ${n}: kernel routes it would program \\(felix-lite\\) =====\\n(?:  .*\\n)*  blackhole 10\\.65\\.`,
        ),
      );
      assert.match(
        out,
        new RegExp(`===== ${n}: tabby status =====\\n[^=]*127\\.0\\.0\\.200:17179\\s+node specific\\s+up`),
      );
    }
    // Each node routes to the other two nodes' blocks through them.
    assert.equal((out.match(/10\.65\.\d+\.\d+\/26 via 127\.0\.0\.20[123] dev eth0/g) ?? []).length, 6);
  });

  it('as root: nodes and pods in namespaces, real routes, every pod reaches every other', async (t) => {
    if (!needKernel(t)) return;
    let out = '';
    const code = await runDemo({ once: true, out: (s) => (out += s) });
    assert.equal(code, 0, out);
    assert.match(out, /every pod reaches every other pod/);
    assert.doesNotMatch(out, /FAIL/);
    // Each node's kernel has a route to each other node's block, through it.
    for (const n of ['node1', 'node2', 'node3']) {
      const section = out.split(`===== ${n}: its kernel routes`)[1]!.split('=====')[1]!;
      assert.equal(
        (section.match(/^10\.65\.\d+\.\d+\/26 via 10\.200\.0\.1[123] dev eth0/gm) ?? []).length,
        2,
        section,
      );
    }
  });
});
