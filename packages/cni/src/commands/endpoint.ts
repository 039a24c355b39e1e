// The pod's WorkloadEndpoint: what felix-lite (and `tabby get workloadendpoints`) knows of a
// pod attachment. Named and labelled as Calico's CNI plugin does, plus our network label so
// GC of one network never touches another's endpoints.
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { workloadEndpointName } from '../spec/names.js';
import type { IpamCtx } from './context.js';
import type { EndpointKey, PodAddress, WorkloadEndpointDoc } from './interfaces.js';

/** Calico's labels on a Kubernetes pod's endpoint. */
export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
/** Ours: the CNI network that wrote the endpoint (GC's scope). */
export const LABEL_NETWORK = 'cni.tabby.dev/network';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The endpoint's key: namespace K8S_POD_NAMESPACE (or `default`), Calico's name. */
export function endpointKey(ctx: IpamCtx): EndpointKey {
  const pod = ctx.env.args.pod;
  try {
    return {
      namespace: pod?.namespace ?? 'default',
      name:
        pod === undefined
          ? workloadEndpointName(ctx.node, 'cni', ctx.env.containerId, ctx.env.ifname)
          : workloadEndpointName(ctx.node, 'k8s', pod.name, ctx.env.ifname),
    };
  } catch (e) {
    throw new CniError(ErrorCode.InvalidEnvironment, 'invalid WorkloadEndpoint name', errorText(e));
  }
}

/** The network's name as a label value; CNI allows longer names than labels do. */
export function networkLabel(ctx: IpamCtx): string {
  const n = ctx.conf.name;
  if (!LABEL_VALUE.test(n) || n.length > 63)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: name',
      `${JSON.stringify(n)} cannot label a WorkloadEndpoint (at most 63 letters, digits, '-', '_', '.')`,
    );
  return n;
}

export function endpointDoc(
  ctx: IpamCtx,
  a: { hostVeth: string; mac: string; addresses: readonly PodAddress[] },
): WorkloadEndpointDoc {
  const pod = ctx.env.args.pod;
  const key = endpointKey(ctx);
  const orchestrator = pod === undefined ? 'cni' : 'k8s';
  return {
    ...key,
    labels: {
      [LABEL_NAMESPACE]: key.namespace,
      [LABEL_ORCHESTRATOR]: orchestrator,
      [LABEL_NETWORK]: networkLabel(ctx),
    },
    spec: {
      orchestrator,
      node: ctx.node,
      containerID: ctx.env.containerId,
      ...(pod === undefined ? { workload: ctx.env.containerId } : { pod: pod.name }),
      endpoint: ctx.env.ifname,
      interfaceName: a.hostVeth,
      ipNetworks: a.addresses.map((x) => x.cidr),
      mac: a.mac,
    },
  };
}
