#!/usr/bin/env node
// Writes docs/reference/resources.md from the resource schemas (after a build), formatted
// with the repository's prettier settings. test/reference-docs.test.ts fails when the
// checked-in page differs from this output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { renderResourcesDoc } from '../dist/src/resources/docs-render.js';

const file = fileURLToPath(new URL('../../../docs/reference/resources.md', import.meta.url));
mkdirSync(dirname(file), { recursive: true });
const options = { ...(await prettier.resolveConfig(file)), filepath: file };
writeFileSync(file, await prettier.format(renderResourcesDoc(), options));
console.log(`wrote ${file}`);
