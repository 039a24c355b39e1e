// CHECK (SPEC.md §2): the attachment still is what ADD made, judged from prevResult: the
// container interface in CNI_NETNS, its MTU, addresses, the routes, the host veth and host
// routes (the Dataplane's inspection), the IPAM reservation and the WorkloadEndpoint in the
// datastore. Every difference is named.
import { CniError, ErrorCode } from '../spec/errors.js';
import { cidrFamily } from '../spec/result.js';
import { hostVethName } from '../spec/names.js';
import type { AttachmentCtx } from './context.js';
import { endpointError, toCniError } from './errors.js';
import type { PodAddress, WorkloadEndpointDoc } from './interfaces.js';
import { ipamCheck } from './ipam-ops.js';
import { endpointKey, endpointProblems } from './endpoint.js';
import { podMtu } from './mtu.js';

export async function check(ctx: AttachmentCtx): Promise<void> {
  const { env, conf, dataplane } = ctx;
  const prev = conf.prevResult;
  if (prev === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: prevResult',
      'CHECK needs the prevResult of ADD',
    );
  const hostVeth = hostVethName(env.containerId, env.args);
  const problems: string[] = [];
  const podIdx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (podIdx < 0) problems.push(`prevResult lists no interface ${env.ifname} with sandbox ${env.netns}`);
  if (!prev.interfaces.some((i) => i.name === hostVeth && (i.sandbox ?? '') === ''))
    problems.push(`prevResult lists no host interface ${hostVeth}`);
  const ours = prev.ips.filter((ip) => ip.interface === podIdx);
  if (podIdx >= 0 && ours.length === 0) problems.push(`prevResult lists no address on ${env.ifname}`);
  const addresses: PodAddress[] = ours.map((ip) => ({
    cidr: ip.address,
    family: cidrFamily(ip.address) === 6 ? 6 : 4,
  }));
  // Routes ADD made: the defaults via the gateways in prevResult (later plugins may add more).
  const gateways = new Set(ours.map((ip) => ip.gateway).filter((g) => g !== undefined));
  const routes = prev.routes.filter(
    (r) => (r.dst === '0.0.0.0/0' || r.dst === '::/0') && r.gw !== undefined && gateways.has(r.gw),
  );
  for (const a of addresses) {
    const dst = a.family === 4 ? '0.0.0.0/0' : '::/0';
    if (!routes.some((r) => r.dst === dst))
      problems.push(`prevResult lists no default route ${dst} via the pod gateway`);
  }

  // The MTU ADD gave the pod, as its result records it (results >= 1.0.0); else the MTU an
  // ADD would choose now (the MTU file may have changed since).
  const podIface = podIdx >= 0 ? prev.interfaces[podIdx] : undefined;
  const mtu = podIface?.mtu ?? podMtu(ctx, ctx.mtuFile);

  let insp;
  try {
    insp = await dataplane.inspect({
      containerId: env.containerId,
      netns: env.netns,
      ifname: env.ifname,
      hostVeth,
      addresses,
      routes,
      mtu,
    });
  } catch (e) {
    throw toCniError(e, ErrorCode.DataplaneFailed, `inspecting ${env.ifname} in ${env.netns}`);
  }
  let ipamProblems: string[];
  try {
    ipamProblems = await ipamCheck(
      ctx,
      addresses.map((a) => a.cidr),
    );
  } catch (e) {
    throw toCniError(e, ErrorCode.IpamRefused, 'checking the IPAM reservation');
  }
  const key = endpointKey(ctx);
  let stored: WorkloadEndpointDoc | undefined;
  try {
    stored = await ctx.endpoints.get(key);
  } catch (e) {
    throw endpointError(e, `reading WorkloadEndpoint ${key.namespace}/${key.name}`);
  }
  const wepProblems = endpointProblems(ctx, stored, {
    hostVeth,
    addresses: addresses.map((a) => a.cidr),
    mac: podIface?.mac,
  });
  if (!insp.netnsExists) {
    // Nothing left anywhere: the container is unknown (no DEL needed); else DEL has work.
    if (
      !insp.hostVethExists &&
      ctx.ipam?.kind === 'tabby' &&
      ipamProblems.length === addresses.length &&
      stored === undefined
    )
      throw new CniError(
        ErrorCode.UnknownContainer,
        `container ${env.containerId} is unknown`,
        `CNI_NETNS ${env.netns} does not exist, and neither the veth ${hostVeth}, an IPAM reservation nor a WorkloadEndpoint does`,
      );
    throw new CniError(
      ErrorCode.NetnsNotFound,
      `CNI_NETNS ${env.netns} does not exist`,
      [...insp.problems, ...ipamProblems, ...wepProblems].join('; '),
    );
  }
  problems.push(...insp.problems, ...ipamProblems, ...wepProblems);
  if (problems.length > 0)
    throw new CniError(ErrorCode.CheckFailed, `CHECK failed: ${problems[0]}`, problems.join('; '));
}
