// The memory backend against the shared Backend contract.
import { MemoryBackend } from '../src/store/memory.js';
import { backendConformance } from './conformance/suite.js';

backendConformance('memory', () => {
  const backend = new MemoryBackend();
  return Promise.resolve({ backend, cleanup: () => backend.close() });
});
