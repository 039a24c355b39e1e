#!/usr/bin/env node
// One-off helper, kept for the record: turns the spec schemas of Calico's CRDs (the
// `manifests/crds.yaml` of a Calico release) into our schema language (src/schema), as a
// starting point for src/resources/*.ts. Those files have been edited by hand since
// (formats, cross-field rules, defaults); re-run only to compare against a new release:
//   node tools/import-calico-crds.mjs <calico>/manifests/crds.yaml ippools bgppeers ...
// Calico is Apache-2.0; the descriptions it emits are Calico's text.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const [file, ...plurals] = process.argv.slice(2);
const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());

const q = (s) => JSON.stringify(s.replace(/\s+/g, ' ').trim());
function opts(n, extra = {}) {
  const o = { ...extra };
  if (n.description) o.description = n.description;
  const parts = Object.entries(o).map(([k, v]) => `${k}: ${k === 'description' ? q(v) : JSON.stringify(v)}`);
  return parts.length ? `{ ${parts.join(', ')} }` : '';
}
function gen(n, ind) {
  const pad = '  '.repeat(ind);
  if (n['x-kubernetes-int-or-string']) return `s.intOrString(${opts(n)})`;
  switch (n.type) {
    case 'string':
      if (n.enum) return `s.enum(${JSON.stringify(n.enum)}${n.description ? `, ${opts(n)}` : ''})`;
      return `s.string(${opts(n, { ...(n.format === 'cidr' ? { format: 'cidr' } : {}), ...(n.pattern ? { pattern: n.pattern } : {}) })})`;
    case 'integer':
      return `s.int(${opts(n, { ...(n.minimum !== undefined ? { minimum: n.minimum } : {}), ...(n.maximum !== undefined ? { maximum: n.maximum } : {}) })})`;
    case 'boolean':
      return `s.bool(${opts(n)})`;
    case 'array':
      return `s.array(${gen(n.items, ind)}${n.description ? `, ${opts(n)}` : ''})`;
    case 'object': {
      if (!n.properties && n.additionalProperties)
        return `s.map(${gen(n.additionalProperties, ind)}${n.description ? `, ${opts(n)}` : ''})`;
      if (!n.properties) return `s.open(${opts(n)})`;
      const req = new Set(n.required ?? []);
      const lines = Object.entries(n.properties).map(([k, v]) => {
        let g = gen(v, ind + 1);
        if (!req.has(k))
          g = `s.optional(${g}${v.default !== undefined ? `, { default: ${JSON.stringify(v.default)} }` : ''})`;
        return `${pad}  ${k}: ${g},`;
      });
      return `s.object(\n  {\n${lines.join('\n')}\n${pad}}${n.description ? `, ${opts(n)}` : ''})`;
    }
    default:
      return `s.open(/* ${JSON.stringify(n)} */)`;
  }
}
for (const p of plurals) {
  const d = docs.find((x) => x?.spec?.names?.plural === p);
  if (!d) throw new Error(`no CRD ${p}`);
  const spec = d.spec.versions[0].schema.openAPIV3Schema.properties.spec;
  console.log(`// ${d.spec.names.kind}\nexport const ${d.spec.names.kind}Spec = ${gen(spec, 0)};\n`);
}
