// The IPAM half of each command, for both kinds of IPAM: Tabby's own (an IpamClient called
// in-process) and a delegated plugin (run from CNI_PATH with the whole config, SPEC.md §4).
import { namespaceKubeconfig } from '../spec/config.js';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { cidrFamily, ipOf, parseResult } from '../spec/result.js';
import { ipamHandle } from '../spec/names.js';
import type { IpamCtx, Ctx, Ipam } from './context.js';
import { toCniError } from './errors.js';
import type { Assignment, IpamAttrs, IpamRequest, NamespaceLabels } from './interfaces.js';
import type { TabbyIpamConf } from '../spec/config.js';

/**
 * What Tabby's IPAM is asked for, as Calico's IPAM plugin asks it: the address CNI_ARGS
 * `IP` names (its AssignIP; the config's families and pools do not apply); else one IPv4
 * address unless `assign_ipv4` is false, one IPv6 address when `assign_ipv6` is true, from
 * `ipv4_pools` / `ipv6_pools` when set (selectors ignored), else from the pools that select
 * the node and the pod's namespace. The same whether this process or the node daemon does
 * the work.
 */
export function assignmentOf(req: IpamRequest, conf: TabbyIpamConf): Assignment {
  const base = { handle: req.handle, node: req.node, attrs: req.attrs };
  if (req.ips !== undefined && req.ips.length > 0) return { ...base, kind: 'explicit', ips: req.ips };
  return {
    ...base,
    kind: 'auto',
    num4: conf.assignIpv4 ? 1 : 0,
    num6: conf.assignIpv6 ? 1 : 0,
    pools: [...conf.ipv4Pools, ...conf.ipv6Pools],
  };
}

/** `10.1.0.7/24` -> `10.1.0.7/32`: pods get host routes, whatever subnet IPAM thinks in. */
export function fullPrefix(cidr: string): string {
  return `${ipOf(cidr)}/${cidrFamily(cidr) === 6 ? 128 : 32}`;
}

function podAttrs(ctx: IpamCtx): IpamAttrs {
  const pod = ctx.env.args.pod;
  return {
    ...(pod === undefined ? {} : { namespace: pod.namespace, pod: pod.name }),
    timestamp: ctx.now().toISOString(),
  };
}

const stdinOf = (ctx: Ctx): string => JSON.stringify(ctx.conf.raw);

/**
 * IPPool namespaceSelector, as Calico's IPAM plugin (cni-plugin/pkg/ipamplugin/ipam_plugin.go
 * and libcalico-go lib/ipam determinePools): a pool serves the pod only when both its
 * nodeSelector and its namespaceSelector match; the selector is matched against the labels
 * the API server has on the Namespace (`kubernetes.io/metadata.name` among them; Calico's
 * `projectcalico.org/name` is a policy label its IPAM does not add, and neither do we).
 * Called by the IPAM only when a pool has such a selector, so the common path reads no API.
 */
function podNamespaceLabels(
  ctx: IpamCtx,
  namespace: string | undefined,
): (pools: readonly string[]) => Promise<NamespaceLabels> {
  return async (pools) => {
    const which = `IPPool${pools.length > 1 ? 's' : ''} ${pools.join(', ')}`;
    if (namespace === undefined) {
      // Not a Kubernetes pod (no K8S_POD_NAMESPACE): Calico matches against no labels.
      ctx.log('debug', `${which}: namespaceSelector matched against no labels (no K8S_POD_NAMESPACE)`);
      return {};
    }
    const kubeconfig = namespaceKubeconfig(ctx.conf);
    if (kubeconfig === undefined)
      throw new CniError(
        ErrorCode.InvalidConfig,
        'invalid network config: kubernetes.kubeconfig',
        `${which} select${pools.length > 1 ? '' : 's'} namespaces (namespaceSelector): the labels of namespace ` +
          `${namespace} are read from the Kubernetes API, and the config has no kubernetes.kubeconfig ` +
          '(nor a kubernetes datastore with a kubeconfig)',
      );
    const labels = await ctx.readNamespace(kubeconfig, namespace);
    ctx.log('debug', `namespace ${namespace} labels ${JSON.stringify(labels)} for ${which}`);
    return labels;
  };
}

export async function ipamAllocate(ctx: IpamCtx): Promise<string[]> {
  const { ipam } = ctx;
  if (ipam === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: ipam',
      'ipam (with a type) is required for ADD',
    );
  let addresses: string[];
  if (ipam.kind === 'tabby') {
    const pod = ctx.env.args.pod;
    const got = await ipam.client.allocate({
      handle: ipamHandle(ctx.conf.name, ctx.env.containerId),
      network: ctx.conf.name,
      containerId: ctx.env.containerId,
      ifname: ctx.env.ifname,
      node: ctx.node,
      attrs: podAttrs(ctx),
      ...(pod === undefined ? {} : { namespace: pod.namespace }),
      ...(ctx.env.args.ip === undefined ? {} : { ips: [ctx.env.args.ip] }),
      namespaceLabels: podNamespaceLabels(ctx, pod?.namespace),
    });
    addresses = got.addresses.map(fullPrefix);
  } else {
    const out = await ipam.exec(ipam.type, 'ADD', stdinOf(ctx));
    let v: unknown;
    try {
      v = JSON.parse(out);
    } catch (e) {
      throw new CniError(
        ErrorCode.DelegateFailed,
        `IPAM plugin ${ipam.type} printed no JSON result`,
        errorText(e),
      );
    }
    addresses = parseResult(v, ctx.conf.cniVersion, `IPAM plugin ${ipam.type} result`).ips.map((i) =>
      fullPrefix(i.address),
    );
  }
  if (addresses.length === 0)
    throw new CniError(
      ErrorCode.IpamRefused,
      'IPAM returned no address',
      `handle ${ctx.conf.name}.${ctx.env.containerId}`,
    );
  return addresses;
}

/** DEL's IPAM half (and ADD's rollback). Idempotent. */
export async function ipamRelease(ctx: IpamCtx): Promise<void> {
  const { ipam } = ctx;
  if (ipam === undefined) return;
  if (ipam.kind === 'tabby') await ipam.client.release(ipamHandle(ctx.conf.name, ctx.env.containerId));
  else await ipam.exec(ipam.type, 'DEL', stdinOf(ctx));
}

/** CHECK's IPAM half: problems, each naming what is wrong. */
export async function ipamCheck(ctx: IpamCtx, expected: readonly string[]): Promise<string[]> {
  const { ipam } = ctx;
  if (ipam === undefined) return [];
  if (ipam.kind === 'delegated') {
    await ipam.exec(ipam.type, 'CHECK', stdinOf(ctx));
    return [];
  }
  const handle = ipamHandle(ctx.conf.name, ctx.env.containerId);
  const held = new Set((await ipam.client.addresses(handle)).map(fullPrefix));
  const problems: string[] = [];
  for (const a of expected)
    if (!held.has(a)) problems.push(`address ${a} is not reserved for handle ${handle} in IPAM`);
  return problems;
}

/** GC's IPAM half: releases every handle of this network whose container is not valid. */
export async function ipamGc(
  ctx: Ctx,
  ipam: Ipam,
  valid: ReadonlySet<string>,
): Promise<{ released: string[]; errors: string[] }> {
  if (ipam.kind === 'delegated') {
    // The delegated plugin knows its own reservations: forward GC (SPEC.md §2 "GC").
    await ipam.exec(ipam.type, 'GC', stdinOf(ctx));
    return { released: [], errors: [] };
  }
  const keep = new Set([...valid].map((c) => ipamHandle(ctx.conf.name, c)));
  const released: string[] = [];
  const errors: string[] = [];
  for (const h of await ipam.client.listHandles(ctx.conf.name)) {
    if (keep.has(h)) continue;
    try {
      await ipam.client.release(h);
      released.push(h);
    } catch (e) {
      // Keep going: release as much as possible, report the rest (SPEC.md: GC).
      errors.push(`${h}: ${toCniError(e, ErrorCode.IpamRefused, 'release').message}`);
    }
  }
  return { released, errors };
}
