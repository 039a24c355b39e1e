// A child process for the multi-process test: `node cas-counter-child.js <endpoint> <prefix> <n>`
// adds 1 to the IPAMConfig "counter" n times by compare-and-swap, re-reading on every
// conflict, then prints {"conflicts": k}. It uses the built backend, as a daemon would.
import { EtcdBackend } from '../../src/backends/etcd/index.js';
import { ConflictError } from '../../src/store/errors.js';

const [endpoint, prefix, count] = process.argv.slice(2);
if (endpoint === undefined || prefix === undefined || count === undefined) {
  console.error('usage: cas-counter-child <endpoint> <prefix> <n>');
  process.exit(2);
}
const backend = new EtcdBackend({ endpoints: [endpoint], prefix });
let conflicts = 0;
try {
  for (let i = 0; i < Number(count); i++) {
    for (;;) {
      const cur = await backend.get({ kind: 'IPAMConfig', name: 'counter' });
      if (cur === undefined) throw new Error('counter missing');
      const { n } = cur.spec as { n: number };
      try {
        await backend.update({ ...cur, spec: { n: n + 1 } });
        break;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        conflicts++;
      }
    }
  }
  console.log(JSON.stringify({ conflicts }));
} finally {
  await backend.close();
}
