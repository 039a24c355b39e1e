// npm start's main job, run to convergence (--once): four tabby-node processes, pods from
// the real IPAM, every node's routes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDemo } from '../src/demo/cluster.js';

describe('npm start (the demo cluster)', () => {
  it('converges: every session up, every block everywhere, and shows each node its routes', async () => {
    let out = '';
    const code = await runDemo({ once: true, out: (s) => (out += s) });
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
});
