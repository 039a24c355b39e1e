#!/usr/bin/env node
// Writes charts/tabby/crds/<plural>.tabby.dev.yaml from the resource schemas (after a build).
// test/crds.test.ts fails when the checked-in files differ from this output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allCrds, renderCrd } from '../dist/src/resources/crds-render.js';

const dir = fileURLToPath(new URL('../../../charts/tabby/crds/', import.meta.url));
mkdirSync(dir, { recursive: true });
for (const crd of allCrds()) writeFileSync(`${dir}${crd.metadata.name}.yaml`, renderCrd(crd));
console.log(`wrote ${allCrds().length} CRDs to ${dir}`);
