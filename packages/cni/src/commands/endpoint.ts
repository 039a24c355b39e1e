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

/** What CHECK expects of the stored endpoint: ADD's values, as prevResult records them. */
export interface ExpectedEndpoint {
  readonly hostVeth: string;
  /** Full-prefix CIDRs: 10.65.1.7/32. */
  readonly addresses: readonly string[];
  /** The pod interface's MAC in prevResult, if it lists one. */
  readonly mac: string | undefined;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * CHECK's endpoint half: each way the stored WorkloadEndpoint differs from what ADD wrote
 * for this container, naming the field. `stored` undefined: it is missing.
 */
export function endpointProblems(
  ctx: IpamCtx,
  stored: WorkloadEndpointDoc | undefined,
  want: ExpectedEndpoint,
): string[] {
  const key = endpointKey(ctx);
  const what = `WorkloadEndpoint ${key.namespace}/${key.name}`;
  if (stored === undefined) return [`${what} is missing from the datastore`];
  const problems: string[] = [];
  const field = (name: string, got: string, expected: string): void => {
    if (got !== expected)
      problems.push(`${what} ${name} is ${JSON.stringify(got)}, not ${JSON.stringify(expected)}`);
  };
  const s = stored.spec;
  field('spec.containerID', s.containerID, ctx.env.containerId);
  field('spec.node', s.node, ctx.node);
  field('spec.endpoint', s.endpoint, ctx.env.ifname);
  field('spec.interfaceName', s.interfaceName, want.hostVeth);
  // Compared as addresses: a delegated IPAM may spell an IPv6 address another way.
  const canon = (c: string): string => {
    const [ip = '', len = ''] = c.split('/');
    if (!ip.includes(':')) return c;
    try {
      // The WHATWG URL host serializer writes IPv6 in RFC 5952's compressed form.
      return `${new URL(`http://[${ip}]`).hostname.slice(1, -1)}/${len}`;
    } catch {
      return c;
    }
  };
  if (!sameSet(s.ipNetworks.map(canon), want.addresses.map(canon)))
    problems.push(
      `${what} spec.ipNetworks is ${JSON.stringify(s.ipNetworks)}, not ${JSON.stringify(want.addresses)}`,
    );
  // Only where both sides have one (an endpoint written by another plugin may hold none).
  if (s.mac !== '' && want.mac !== undefined) field('spec.mac', s.mac.toLowerCase(), want.mac.toLowerCase());
  return problems;
}
