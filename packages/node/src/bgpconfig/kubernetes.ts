// The Kubernetes objects BGP configuration reads, from their API form (a manifest, or objects
// the API server returned): Secrets (BGP passwords), Services and EndpointSlices (or the older
// Endpoints) for service advertisement, and Nodes for their labels.
import type { EndpointSliceInfo, KubernetesObjects, SecretData, ServiceInfo } from './inputs.js';

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

export class KubernetesObjectError extends Error {}

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
      const meta = obj(it['metadata']);
      const name = str(meta['name']);
      const namespace = str(meta['namespace']) ?? 'default';
      const where = `document ${i + 1} (${String(it['kind'])} ${name ?? '?'})`;
      if (name === undefined) throw new KubernetesObjectError(`${where}: metadata.name is missing`);
      switch (it['kind']) {
        case 'Secret': {
          const data: Record<string, string> = {};
          for (const [k, v] of Object.entries(obj(it['data'])))
            if (typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
          for (const [k, v] of Object.entries(obj(it['stringData']))) if (typeof v === 'string') data[k] = v;
          secrets.push({ name, data });
          break;
        }
        case 'Service': {
          const spec = obj(it['spec']);
          const clusterIP = str(spec['clusterIP']);
          const clusterIPs = strs(spec['clusterIPs']);
          const fams = strs(spec['ipFamilies']).filter(
            (f): f is 'IPv4' | 'IPv6' => f === 'IPv4' || f === 'IPv6',
          );
          const type = str(spec['type']) ?? 'ClusterIP';
          if (
            type !== 'ClusterIP' &&
            type !== 'NodePort' &&
            type !== 'LoadBalancer' &&
            type !== 'ExternalName'
          )
            throw new KubernetesObjectError(
              `${where}: spec.type ${JSON.stringify(type)} is not a Service type`,
            );
          const ips = clusterIPs.length > 0 ? clusterIPs : clusterIP !== undefined ? [clusterIP] : [];
          services.push({
            namespace,
            name,
            type,
            ...(clusterIP !== undefined ? { clusterIP } : {}),
            clusterIPs,
            externalIPs: strs(spec['externalIPs']),
            ...(str(spec['loadBalancerIP']) !== undefined
              ? { loadBalancerIP: str(spec['loadBalancerIP'])! }
              : {}),
            loadBalancerIngressIPs: arr(obj(obj(it['status'])['loadBalancer'])['ingress'])
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
          });
          break;
        }
        case 'EndpointSlice': {
          const at = str(it['addressType']);
          const addressType = at === 'IPv6' ? 'IPv6' : at === 'FQDN' ? 'FQDN' : 'IPv4';
          endpointSlices.push({
            namespace,
            serviceName: labelsOf(meta)['kubernetes.io/service-name'] ?? '',
            addressType,
            endpoints: arr(it['endpoints']).map((e) => {
              const ready = obj(obj(e)['conditions'])['ready'];
              const nodeName = str(obj(e)['nodeName']);
              return {
                ...(typeof ready === 'boolean' ? { ready } : {}),
                ...(nodeName !== undefined ? { nodeName } : {}),
              };
            }),
          });
          break;
        }
        case 'Endpoints': {
          // core/v1 Endpoints: one slice per address family, ready and not-ready addresses.
          for (const fam of ['IPv4', 'IPv6'] as const) {
            const eps: { ready: boolean; nodeName?: string }[] = [];
            for (const sub of arr(it['subsets']))
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
            if (eps.length > 0)
              endpointSlices.push({ namespace, serviceName: name, addressType: fam, endpoints: eps });
          }
          break;
        }
        case 'Node':
          nodeLabels.set(name, labelsOf(meta));
          break;
        default:
          break;
      }
    }
  }
  return { secrets, services, endpointSlices, nodeLabels };
}
