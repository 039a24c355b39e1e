// Service IP advertisement, as Calico v3.31.7's confd does it (confd/pkg/backends/calico/
// routes.go and client.go updateGlobalRoutes): the configured service ranges are advertised
// from every node (and never programmed from learned routes); single addresses (/32, /128)
// only from nodes that should attract the traffic: for externalTrafficPolicy Local, those
// with a ready local endpoint.
import type { BGPConfiguration } from '@tabby/datastore';
import { cidrContainsIp, parseCidr, parseIp } from '@tabby/datastore';
import type { BgpEnvironment, BgpSnapshot, EndpointSliceInfo, ServiceInfo } from './inputs.js';

export const EXCLUDE_FROM_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

export interface ServiceRoutes {
  /** CIDRs this node originates (Calico's /staticroutes). */
  readonly advertised: readonly string[];
  /** CIDRs whose learned routes are not programmed into the kernel (Calico's /rejectcidrs). */
  readonly rejected: readonly string[];
}

const isSingle = (cidr: string): boolean => cidr.endsWith(cidr.includes(':') ? '/128' : '/32');
const fullLength = (ip: string): string => `${ip}/${ip.includes(':') ? 128 : 32}`;

function within(ip: string, cidrs: readonly string[], singleOnly: boolean): boolean {
  const a = parseIp(ip);
  if (a === undefined) return false;
  return cidrs.some((c) => {
    const n = parseCidr(c);
    return n !== undefined && cidrContainsIp(n, a) && (!singleOnly || isSingle(c));
  });
}

/** The service ranges configured: the default BGPConfiguration's, CALICO_ADVERTISE_CLUSTER_IPS overriding the cluster ranges. */
export function serviceCidrs(
  cfg: BGPConfiguration | undefined,
  env: BgpEnvironment,
): { readonly cluster: string[]; readonly external: string[]; readonly loadBalancer: string[] } {
  const cidrs = (xs: readonly { cidr?: string }[] | undefined): string[] =>
    (xs ?? []).map((x) => x.cidr ?? '').filter((c) => c !== '');
  return {
    cluster:
      env.CALICO_ADVERTISE_CLUSTER_IPS !== undefined && env.CALICO_ADVERTISE_CLUSTER_IPS !== ''
        ? [env.CALICO_ADVERTISE_CLUSTER_IPS]
        : cidrs(cfg?.spec.serviceClusterIPs),
    external: cidrs(cfg?.spec.serviceExternalIPs),
    loadBalancer: cidrs(cfg?.spec.serviceLoadBalancerIPs),
  };
}

export function serviceRoutes(
  snap: BgpSnapshot,
  nodeName: string,
  cfg: BGPConfiguration | undefined,
  env: BgpEnvironment,
  nodeLabels: Readonly<Record<string, string>>,
): ServiceRoutes {
  const { cluster: clusterCidrs, external: externalCidrs, loadBalancer: lbCidrs } = serviceCidrs(cfg, env);
  const aggregate = (cfg?.spec.serviceLoadBalancerAggregation ?? 'Enabled') === 'Enabled';
  const excluded = nodeLabels[EXCLUDE_FROM_LB_LABEL] === 'true';

  const advertised = new Set<string>();
  const rejected = new Set<string>();
  // updateGlobalRoutes, for cluster ranges, external ranges and (when aggregated) LB ranges.
  const global = [
    ...clusterCidrs,
    ...externalCidrs.filter((c) => !isSingle(c)),
    ...(aggregate ? lbCidrs.filter((c) => !isSingle(c)) : []),
  ];
  for (const c of global) {
    rejected.add(c);
    if (!excluded) advertised.add(c);
  }

  const slicesOf = (s: ServiceInfo): EndpointSliceInfo[] =>
    snap.kubernetes.endpointSlices.filter((e) => e.namespace === s.namespace && e.serviceName === s.name);

  // routes.go advertiseThisService
  const advertiseThis = (s: ServiceInfo): boolean => {
    if (excluded) return false;
    if (s.type !== 'ClusterIP' && s.type !== 'NodePort' && s.type !== 'LoadBalancer') return false;
    if (s.clusterIP === undefined || s.clusterIP === '' || s.clusterIP === 'None') return false;
    if (s.externalTrafficPolicy === 'Cluster') {
      const lbIps = [s.loadBalancerIP ?? '', ...s.loadBalancerIngressIPs];
      if (s.type === 'LoadBalancer' && lbIps.some((ip) => ip !== '' && within(ip, lbCidrs, true)))
        return true;
      if (s.externalIPs.some((ip) => ip !== '' && within(ip, externalCidrs, true))) return true;
    }
    if (s.externalTrafficPolicy !== 'Local' && aggregate) return false;
    for (const e of slicesOf(s)) {
      if (!(s.ipFamilies as readonly string[]).includes(e.addressType)) continue;
      for (const ep of e.endpoints) {
        if (ep.ready === false) continue; // absent means ready (EndpointSlice API)
        if (s.externalTrafficPolicy !== 'Local') return true;
        if (ep.nodeName === nodeName) return true;
      }
    }
    return false;
  };

  for (const s of snap.kubernetes.services) {
    if (!advertiseThis(s)) continue;
    // getAllRoutesForService
    const ips: string[] = [];
    if (clusterCidrs.length > 0) ips.push(...(s.clusterIPs.length > 0 ? s.clusterIPs : [s.clusterIP ?? '']));
    ips.push(...s.externalIPs.filter((ip) => ip !== '' && within(ip, externalCidrs, false)));
    ips.push(...s.loadBalancerIngressIPs.filter((ip) => ip !== '' && within(ip, lbCidrs, false)));
    for (const ip of ips) if (ip !== '') advertised.add(fullLength(ip));
  }
  return { advertised: [...advertised], rejected: [...rejected] };
}
