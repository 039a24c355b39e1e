// What every stored resource has: apiVersion, kind, Kubernetes-style metadata, spec.

/** Our API group and version; Calico's `projectcalico.org/v3` (and `crd.projectcalico.org/v1`) are read too. */
export const API_GROUP = 'tabby.dev';
export const API_VERSION = 'tabby.dev/v1';
/** apiVersions accepted on input and rewritten to ours. */
export const CALICO_API_VERSIONS: readonly string[] = ['projectcalico.org/v3', 'crd.projectcalico.org/v1'];

export interface ObjectMeta {
  name: string;
  /** Only for namespaced kinds (WorkloadEndpoint). */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /**
   * Set by the datastore: the revision at which this object last changed. Opaque: compare
   * for equality only. An update must carry the one it read (compare-and-swap).
   */
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
}

/** A resource of kind K with spec S, as stored and returned. */
export interface Resource<K extends string = string, S = unknown> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

/** Which object: kind, name and (namespaced kinds only) namespace. */
export interface ResourceKey<K extends string = string> {
  readonly kind: K;
  readonly name: string;
  readonly namespace?: string;
}

export function keyOf<K extends string>(r: { kind: K; metadata: ObjectMeta }): ResourceKey<K> {
  return r.metadata.namespace === undefined
    ? { kind: r.kind, name: r.metadata.name }
    : { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace };
}

export function formatKey(k: ResourceKey): string {
  return k.namespace === undefined ? `${k.kind} ${k.name}` : `${k.kind} ${k.namespace}/${k.name}`;
}
