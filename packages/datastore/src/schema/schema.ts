// One schema per resource, three uses: the TypeScript type (`Infer<typeof s>`, checked by
// tsc), the validator (`check`, with a field path and a reason per problem) and the CRD's
// OpenAPI v3 schema (`toOpenApi`, written to charts/ and checked for drift by a test).
// Kept to what Kubernetes calls a structural schema: every node has a type, objects list
// their properties, maps are `additionalProperties` (no `$ref`, no `oneOf` of types).

/** A constraint across fields of one object: a CEL rule for the API server and the same check in TypeScript. */
export interface CrossFieldRule {
  /** CEL expression, emitted as `x-kubernetes-validations` (self is the object). */
  readonly rule: string;
  readonly message: string;
  /** The same rule in TypeScript: returns the offending field (relative) or undefined. */
  readonly check: (obj: Record<string, unknown>) => string | undefined;
}

interface Common {
  readonly description?: string;
  /** null is a value here (Calico's IPAMBlock allocations: null means free). */
  readonly nullable?: boolean;
}

export type SchemaNode =
  | (Common & {
      readonly type: 'string';
      readonly enum?: readonly string[];
      readonly pattern?: string;
      readonly maxLength?: number;
      /** Our own formats, checked by `check` (not emitted: Kubernetes ignores unknown formats). */
      readonly format?: StringFormat;
    })
  | (Common & { readonly type: 'integer'; readonly minimum?: number; readonly maximum?: number })
  | (Common & { readonly type: 'boolean' })
  | (Common & { readonly type: 'array'; readonly items: SchemaNode; readonly maxItems?: number })
  | (Common & { readonly type: 'map'; readonly values: SchemaNode })
  | (Common & {
      readonly type: 'object';
      readonly properties: Readonly<Record<string, PropNode>>;
      readonly rules?: readonly CrossFieldRule[];
      /** Accept any content (Kubernetes' x-kubernetes-preserve-unknown-fields). */
      readonly open?: boolean;
    })
  | (Common & { readonly type: 'intOrString' });

export interface PropNode {
  readonly node: SchemaNode;
  readonly optional: boolean;
  readonly default?: unknown;
}

/** A schema node carrying the TypeScript type it describes (phantom `T`). */
export interface Schema<T> {
  readonly node: SchemaNode;
  /** Never set: only carries `T` for `Infer`. */
  readonly __type?: T;
}

/** An optional property (absent is fine; `default` is filled in by `applyDefaults`). */
export interface Optional<T> {
  readonly optional: true;
  readonly schema: Schema<T>;
  readonly default?: T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Props = Record<string, Schema<unknown> | Optional<unknown>>;
type RequiredKeys<P extends Props> = { [K in keyof P]: P[K] extends Optional<unknown> ? never : K }[keyof P];
type OptionalKeys<P extends Props> = { [K in keyof P]: P[K] extends Optional<unknown> ? K : never }[keyof P];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type InferProps<P extends Props> = Simplify<
  { -readonly [K in RequiredKeys<P>]: P[K] extends Schema<infer T> ? T : never } & {
    -readonly [K in OptionalKeys<P>]?: P[K] extends Optional<infer T> ? T : never;
  }
>;

/** String formats `check` understands. */
export type StringFormat =
  | 'ip' // an IPv4 or IPv6 address
  | 'ipv4'
  | 'ipv6'
  | 'cidr' // a network in CIDR notation, either family
  | 'ipOrCidr'
  | 'ipPort' // an address with an optional port: 10.0.0.1, 10.0.0.1:1790, [fd00::1]:1790
  | 'selector' // a Calico label selector
  | 'asNumber' // "64512" or "1.10" (asdot), as Calico accepts in some string fields
  | 'duration' // a Go duration as Kubernetes writes it: 90s, 2m, 1h30m
  | 'dnsLabel'
  | 'dnsSubdomain';

function make<T>(node: SchemaNode): Schema<T> {
  return { node };
}

export const s = {
  string(opts: Omit<Extract<SchemaNode, { type: 'string' }>, 'type' | 'enum'> = {}): Schema<string> {
    return make({ type: 'string', ...opts });
  },
  enum<const V extends string>(values: readonly V[], opts: Common = {}): Schema<V> {
    return make({ type: 'string', enum: values, ...opts });
  },
  int(opts: Omit<Extract<SchemaNode, { type: 'integer' }>, 'type'> = {}): Schema<number> {
    return make({ type: 'integer', ...opts });
  },
  bool(opts: Common = {}): Schema<boolean> {
    return make({ type: 'boolean', ...opts });
  },
  intOrString(opts: Common = {}): Schema<number | string> {
    return make({ type: 'intOrString', ...opts });
  },
  array<T>(items: Schema<T>, opts: Common & { maxItems?: number } = {}): Schema<T[]> {
    return make({ type: 'array', items: items.node, ...opts });
  },
  map<T>(values: Schema<T>, opts: Common = {}): Schema<Record<string, T>> {
    return make({ type: 'map', values: values.node, ...opts });
  },
  object<P extends Props>(
    props: P,
    opts: Common & { rules?: readonly CrossFieldRule[] } = {},
  ): Schema<InferProps<P>> {
    const properties: Record<string, PropNode> = {};
    for (const [k, v] of Object.entries(props)) {
      properties[k] = isOptional(v)
        ? {
            node: v.schema.node,
            optional: true,
            ...(v.default === undefined ? {} : { default: v.default }),
          }
        : { node: v.node, optional: false };
    }
    return make({ type: 'object', properties, ...opts });
  },
  /** Anything goes below here (kept, not checked). */
  open(opts: Common = {}): Schema<Record<string, unknown>> {
    return make({ type: 'object', properties: {}, open: true, ...opts });
  },
  /** Also accepts null, typed `T | null`. */
  nullable<T>(schema: Schema<T>): Schema<T | null> {
    return make({ ...schema.node, nullable: true });
  },
  optional<T>(schema: Schema<T>, opts: { default?: T } = {}): Optional<T> {
    return { optional: true, schema, ...opts };
  },
};

function isOptional(v: Schema<unknown> | Optional<unknown>): v is Optional<unknown> {
  return 'optional' in v;
}
