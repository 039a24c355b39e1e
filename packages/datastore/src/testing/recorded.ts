// The Kubernetes API bodies in k8s-recorded/ (see its README: copied from the Kubernetes
// documentation, none captured from a live cluster), for tests here and in other packages.
import { readFileSync } from 'node:fs';

/** From dist/src/testing/ back to this source directory, where the JSON files are. */
const DIR = new URL('../../../src/testing/k8s-recorded/', import.meta.url);

/** A recorded body, parsed: `recorded('status-404-notfound.json')`. */
export function recorded(file: string): unknown {
  return JSON.parse(readFileSync(new URL(file, DIR), 'utf8'));
}
