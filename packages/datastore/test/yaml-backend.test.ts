// The YAML directory backend against the shared Backend contract; `second` is another
// instance on the same directory, as another process would open it.
import { YamlDirBackend } from '../src/backends/yaml/index.js';
import { backendConformance } from './conformance/suite.js';
import { tempRoot } from './yaml/helpers.js';

backendConformance(
  'yaml directory',
  async () => {
    const { root, remove } = tempRoot();
    const backend = await YamlDirBackend.open({ root });
    const others: YamlDirBackend[] = [];
    return {
      backend,
      second: async () => {
        const b = await YamlDirBackend.open({ root });
        others.push(b);
        return b;
      },
      cleanup: async () => {
        await backend.close();
        for (const b of others) await b.close();
        remove();
      },
    };
  },
  { shared: true },
);
