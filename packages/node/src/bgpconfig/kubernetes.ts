// The Kubernetes objects BGP configuration reads, from their API form (a manifest, objects
// the API server returned, or the objects of watch events): Secrets (BGP passwords), Services
// and EndpointSlices (or the older Endpoints) for service advertisement, and Nodes for their
// labels. One converter per kind; `kubernetesObjectsFrom` (a file of objects) and the node
// daemon's watcher (kubernetes/objects-watcher.ts) both use them.
//
// The API server leaves apiVersion and kind off the items of a built-in kind's list
// (kubernetes/kubernetes#3030), so the converters never look at `kind`: the caller knows it.
import type { BGPConfiguration } from '@tabby/datastore';
import type {
  BgpEnvironment,
  BgpSnapshot,
  EndpointSliceInfo,
  KubernetesObjects,
  SecretData,
  ServiceInfo,
} from './inputs.js';
import { serviceCidrs } from './services.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === 'string');
const labelsOf = (m: Obj): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(m['labels']))) if (typeof v === 'string') out[k] = v;
  return out;
};

/** An object that cannot be read; the message names the field, the caller says which object. */
export class KubernetesObjectError extends Error {}

/** The kinds read; anything else is ignored. */
export const KUBERNETES_KINDS = ['Secret', 'Service', 'EndpointSlice', 'Endpoints', 'Node'] as const;
export type KubernetesKind = (typeof KUBERNETES_KINDS)[number];

/** An object's name and namespace (default "default", as kubectl places a manifest without one). */
export function objectName(o: unknown): { readonly name: string; readonly namespace: string } {
  const meta = obj(obj(o)['metadata']);
  const name = str(meta['name']);
  if (name === undefined || name === '') throw new KubernetesObjectError('metadata.name is missing');
  return { name, namespace: str(meta['namespace']) ?? 'default' };
}

/** A Secret, `data` base64-decoded (`stringData`, in a manifest, wins as the API server does on write). */
export function secretFrom(o: unknown): SecretData {
  const { name } = objectName(o);
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(obj(o)['data'])))
    if (typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(obj(obj(o)['stringData']))) if (typeof v === 'string') data[k] = v;
  return { name, data };
}

export function serviceFrom(o: unknown): ServiceInfo {
  const { name, namespace } = objectName(o);
  const spec = obj(obj(o)['spec']);
  const clusterIP = str(spec['clusterIP']);
  const clusterIPs = strs(spec['clusterIPs']);
  const fams = strs(spec['ipFamilies']).filter((f): f is 'IPv4' | 'IPv6' => f === 'IPv4' || f === 'IPv6');
  const type = str(spec['type']) ?? 'ClusterIP';
  if (type !== 'ClusterIP' && type !== 'NodePort' && type !== 'LoadBalancer' && type !== 'ExternalName')
    throw new KubernetesObjectError(`spec.type ${JSON.stringify(type)} is not a Service type`);
  const ips = clusterIPs.length > 0 ? clusterIPs : clusterIP !== undefined ? [clusterIP] : [];
  const lbIP = str(spec['loadBalancerIP']);
  return {
    namespace,
    name,
    type,
    ...(clusterIP !== undefined ? { clusterIP } : {}),
    clusterIPs,
    externalIPs: strs(spec['externalIPs']),
    ...(lbIP !== undefined ? { loadBalancerIP: lbIP } : {}),
    loadBalancerIngressIPs: arr(obj(obj(obj(o)['status'])['loadBalancer'])['ingress'])
      .map((x) => str(obj(x)['ip']))
      .filter((x): x is string => x !== undefined),
    externalTrafficPolicy: spec['externalTrafficPolicy'] === 'Local' ? 'Local' : 'Cluster',
    // The API server fills ipFamilies; objects from older manifests get them from the cluster IPs.
    ipFamilies:
      fams.length > 0
        ? fams
        : [
            ...new Set(
              ips
                .filter((ip) => ip !== 'None' && ip !== '')
                .map((ip): 'IPv4' | 'IPv6' => (ip.includes(':') ? 'IPv6' : 'IPv4')),
            ),
          ],
  };
}

/** A discovery.k8s.io/v1 EndpointSlice: its Service (label kubernetes.io/service-name) and endpoints. */
export function endpointSliceFrom(o: unknown): EndpointSliceInfo {
  const { namespace } = objectName(o);
  const at = str(obj(o)['addressType']);
  return {
    namespace,
    serviceName: labelsOf(obj(obj(o)['metadata']))['kubernetes.io/service-name'] ?? '',
    addressType: at === 'IPv6' ? 'IPv6' : at === 'FQDN' ? 'FQDN' : 'IPv4',
    endpoints: arr(obj(o)['endpoints']).map((e) => {
      const ready = obj(obj(e)['conditions'])['ready'];
      const nodeName = str(obj(e)['nodeName']);
      return {
        ...(typeof ready === 'boolean' ? { ready } : {}),
        ...(nodeName !== undefined ? { nodeName } : {}),
      };
    }),
  };
}

/** core/v1 Endpoints (manifests only): one slice per address family, ready and not-ready addresses. */
export function endpointsFrom(o: unknown): EndpointSliceInfo[] {
  const { name, namespace } = objectName(o);
  const out: EndpointSliceInfo[] = [];
  for (const fam of ['IPv4', 'IPv6'] as const) {
    const eps: { ready: boolean; nodeName?: string }[] = [];
    for (const sub of arr(obj(o)['subsets']))
      for (const [field, ready] of [
        ['addresses', true],
        ['notReadyAddresses', false],
      ] as const)
        for (const a of arr(obj(sub)[field])) {
          const ip = str(obj(a)['ip']) ?? '';
          if ((fam === 'IPv6') !== ip.includes(':')) continue;
          const nodeName = str(obj(a)['nodeName']);
          eps.push({ ready, ...(nodeName !== undefined ? { nodeName } : {}) });
        }
    if (eps.length > 0) out.push({ namespace, serviceName: name, addressType: fam, endpoints: eps });
  }
  return out;
}

/** A Node's (or its PartialObjectMetadata's) name and labels. */
export function nodeLabelsFrom(o: unknown): {
  readonly name: string;
  readonly labels: Record<string, string>;
} {
  return { name: objectName(o).name, labels: labelsOf(obj(obj(o)['metadata'])) };
}

/** Reads the objects this module knows (Secret, Service, EndpointSlice, Endpoints, Node); others are ignored. */
export function kubernetesObjectsFrom(docs: readonly unknown[]): KubernetesObjects {
  const secrets: SecretData[] = [];
  const services: ServiceInfo[] = [];
  const endpointSlices: EndpointSliceInfo[] = [];
  const nodeLabels = new Map<string, Record<string, string>>();
  for (const [i, d] of docs.entries()) {
    if (!isObj(d)) continue;
    const items = d['kind'] === 'List' || String(d['kind']).endsWith('List') ? arr(d['items']) : [d];
    for (const it of items) {
      if (!isObj(it)) continue;
      const kind = String(it['kind']);
      try {
        switch (kind) {
          case 'Secret':
            secrets.push(secretFrom(it));
            break;
          case 'Service':
            services.push(serviceFrom(it));
            break;
          case 'EndpointSlice':
            endpointSlices.push(endpointSliceFrom(it));
            break;
          case 'Endpoints':
            endpointSlices.push(...endpointsFrom(it));
            break;
          case 'Node': {
            const n = nodeLabelsFrom(it);
            nodeLabels.set(n.name, n.labels);
            break;
          }
          default:
            break;
        }
      } catch (e) {
        if (!(e instanceof KubernetesObjectError)) throw e;
        const name = str(obj(it['metadata'])['name']);
        throw new KubernetesObjectError(`document ${i + 1} (${kind} ${name ?? '?'}): ${e.message}`);
      }
    }
  }
  return { secrets, services, endpointSlices, nodeLabels };
}

/** What of Kubernetes the BGP configuration of a snapshot reads, beyond Node labels. */
export interface KubernetesNeeds {
  /** Secrets named by a password reference (BGPPeer password, default BGPConfiguration nodeMeshPassword). */
  readonly secrets: readonly string[];
  /** Some service range is advertised, so Services and EndpointSlices matter (Calico's route generator). */
  readonly services: boolean;
}

/**
 * The Secrets compute.ts reads passwords from (every BGPPeer's, not only this node's: all
 * nodes share one ServiceAccount, so this asks for nothing another node could not read), and
 * whether service advertisement is configured at all: Calico's confd starts its Service and
 * EndpointSlice watches only then (client.go: "to avoid needing to watch services / endpoints").
 */
export function kubernetesNeeds(snap: BgpSnapshot, env: BgpEnvironment): KubernetesNeeds {
  const names = new Set<string>();
  const add = (ref: { name?: string } | undefined): void => {
    if (ref?.name !== undefined && ref.name !== '') names.add(ref.name);
  };
  for (const p of snap.bgpPeers) add(p.spec.password?.secretKeyRef);
  const global: BGPConfiguration | undefined = snap.bgpConfigurations.find(
    (c) => c.metadata.name === 'default',
  );
  add(global?.spec.nodeMeshPassword?.secretKeyRef);
  const c = serviceCidrs(global, env);
  return {
    secrets: [...names].sort(),
    services: c.cluster.length + c.external.length + c.loadBalancer.length > 0,
  };
}
