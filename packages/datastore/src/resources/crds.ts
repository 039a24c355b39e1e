// The CustomResourceDefinitions for charts/, built from the same schemas as the types and
// the validator. tools/gen-crds.mjs writes them; test/crds.test.ts fails if the checked-in
// files differ from what this produces (regenerate with `npm run gen:crds`).
import { toOpenApi } from '../schema/index.js';
import type { OpenApi } from '../schema/index.js';
import type { KindDef } from './define.js';
import { KIND_INFO, KINDS } from './kinds.js';
import type { Kind } from './kinds.js';
import { API_GROUP } from './meta.js';
import { KIND_DEFS } from './registry.js';

export type Crd = Record<string, unknown> & { metadata: { name: string } };

export function crdFor(kind: Kind): Crd {
  const def = KIND_DEFS[kind] as unknown as KindDef<Kind, unknown>;
  const { plural, namespaced } = KIND_INFO[kind];
  const spec: OpenApi = toOpenApi(def.spec);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      scope: namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.description,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: spec,
              },
            },
          },
          ...(def.columns === undefined
            ? {}
            : {
                additionalPrinterColumns: [
                  ...def.columns.map((c) => ({ name: c.name, type: c.type, jsonPath: c.jsonPath })),
                  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
                ],
              }),
        },
      ],
    },
  };
}

export function allCrds(): Crd[] {
  return KINDS.map(crdFor);
}
