// A child process for the IPAM multi-process stress test and benchmark:
//   node stress-child.js '<backend descriptor JSON>' <node[,node...]> <cycles> <seed> <tag> [releaseRate]
// runs runStress against the shared store and prints its StressResult as one JSON line.
import type { BackendDescriptor } from './stress.js';
import { openBackend, runStress } from './stress.js';

const [desc, nodeArg, cycles, seed, tag, rate] = process.argv.slice(2);
// One node, or several separated by commas (allocations go round-robin over them).
const nodes = nodeArg?.split(',');
const node = nodes?.[0];
if (
  desc === undefined ||
  node === undefined ||
  cycles === undefined ||
  seed === undefined ||
  tag === undefined
) {
  console.error('usage: stress-child <descriptor JSON> <node> <cycles> <seed> <tag> [releaseRate]');
  process.exit(2);
}
const backend = await openBackend(JSON.parse(desc) as BackendDescriptor);
try {
  const r = await runStress(backend, {
    node,
    ...(nodes !== undefined && nodes.length > 1 ? { nodes } : {}),
    cycles: Number(cycles),
    seed: Number(seed),
    tag,
    ...(rate === undefined ? {} : { releaseRate: Number(rate) }),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
} finally {
  await backend.close();
}
