// A schema as the OpenAPI v3 (structural) schema of a CustomResourceDefinition version.
import type { Schema, SchemaNode } from './schema.js';

export type OpenApi = Record<string, unknown>;

export function toOpenApi<T>(schema: Schema<T>): OpenApi {
  return node(schema.node);
}

function node(n: SchemaNode): OpenApi {
  const out: OpenApi = {};
  switch (n.type) {
    case 'string':
      out['type'] = 'string';
      if (n.enum !== undefined) out['enum'] = [...n.enum];
      if (n.pattern !== undefined) out['pattern'] = n.pattern;
      if (n.maxLength !== undefined) out['maxLength'] = n.maxLength;
      break;
    case 'integer':
      out['type'] = 'integer';
      if (n.minimum !== undefined) out['minimum'] = n.minimum;
      if (n.maximum !== undefined) out['maximum'] = n.maximum;
      break;
    case 'boolean':
      out['type'] = 'boolean';
      break;
    case 'intOrString':
      out['x-kubernetes-int-or-string'] = true;
      out['anyOf'] = [{ type: 'integer' }, { type: 'string' }];
      break;
    case 'array':
      out['type'] = 'array';
      out['items'] = node(n.items);
      if (n.maxItems !== undefined) out['maxItems'] = n.maxItems;
      break;
    case 'map':
      out['type'] = 'object';
      out['additionalProperties'] = node(n.values);
      break;
    case 'object': {
      out['type'] = 'object';
      if (n.open === true) {
        out['x-kubernetes-preserve-unknown-fields'] = true;
        break;
      }
      const props: Record<string, OpenApi> = {};
      const required: string[] = [];
      for (const [k, p] of Object.entries(n.properties)) {
        const sub = node(p.node);
        if (p.default !== undefined) sub['default'] = p.default;
        props[k] = sub;
        if (!p.optional) required.push(k);
      }
      out['properties'] = props;
      if (required.length > 0) out['required'] = required;
      if (n.rules !== undefined && n.rules.length > 0)
        out['x-kubernetes-validations'] = n.rules.map((r) => ({ rule: r.rule, message: r.message }));
      break;
    }
  }
  if (n.nullable === true) out['nullable'] = true;
  if (n.description !== undefined) out['description'] = n.description;
  return out;
}
