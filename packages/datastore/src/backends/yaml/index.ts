// The YAML directory backend: the embedded default datastore (no cluster needed).
export { ResourceFileError, YamlDirBackend } from './backend.js';
export type { YamlDirBackendOptions } from './backend.js';
export { FLOCK_ADDON_PATH } from './lock.js';
