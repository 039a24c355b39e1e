// ADD: an address from IPAM, the veth pair, the pod side (address, gateway route, default
// route), the host side (sysctls, host route). Any failure undoes every step done so far,
// newest first, and returns the error with what could not be undone appended.
import { CniError, ErrorCode } from '../spec/errors.js';
import type { CniInterface, CniResult, IpConfig, Route } from '../spec/result.js';
import { cidrFamily, emptyResult } from '../spec/result.js';
import { hostVethName } from '../spec/names.js';
import type { AttachmentCtx } from './context.js';
import { toCniError, withTrailer } from './errors.js';
import type { PodAddress, VethCreated } from './interfaces.js';
import { GATEWAY4 } from './interfaces.js';
import { ipamAllocate, ipamRelease } from './ipam-ops.js';
import { endpointDoc, endpointKey, networkLabel } from './endpoint.js';
import { endpointError } from './errors.js';
import { podMtu } from './mtu.js';

const dnsSet = (d: CniResult['dns']): boolean =>
  d.nameservers !== undefined || d.domain !== undefined || d.search !== undefined || d.options !== undefined;

export async function add(ctx: AttachmentCtx): Promise<CniResult> {
  const { env, conf, dataplane } = ctx;
  if (conf.ipam === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: ipam',
      'ipam (with a type) is required for ADD',
    );
  const hostVeth = hostVethName(env.containerId, env.args);
  // The endpoint's name and labels, and the MTU, are settled before anything is done.
  const wepKey = endpointKey(ctx);
  networkLabel(ctx);
  const mtu = podMtu(ctx, ctx.mtuFile);
  const undo: { what: string; run: () => Promise<unknown> }[] = [];
  let step = 'IPAM allocation';
  let fallback: number = ErrorCode.IpamRefused;
  try {
    let cidrs: string[];
    try {
      cidrs = await ipamAllocate(ctx);
    } catch (e) {
      // A delegated plugin that failed ADD gets DEL before we return (SPEC.md §4).
      if (ctx.ipam?.kind === 'delegated') undo.push({ what: 'IPAM DEL', run: () => ipamRelease(ctx) });
      throw e;
    }
    undo.push({ what: `release of ${cidrs.join(', ')}`, run: () => ipamRelease(ctx) });
    const addresses: PodAddress[] = cidrs.map((c) => ({ cidr: c, family: cidrFamily(c) === 6 ? 6 : 4 }));

    step = `creating veth ${hostVeth} / ${env.ifname}`;
    fallback = ErrorCode.DataplaneFailed;
    const veth: VethCreated = await dataplane.createVeth({
      containerId: env.containerId,
      netns: env.netns,
      ifname: env.ifname,
      hostVeth,
      mtu,
      ipv6: addresses.some((a) => a.family === 6),
    });
    undo.push({
      what: `removal of veth ${hostVeth}`,
      run: () => dataplane.removeVeth({ hostVeth, netns: env.netns, ifname: env.ifname }),
    });

    const routes: Route[] = [];
    if (addresses.some((a) => a.family === 4)) routes.push({ dst: '0.0.0.0/0', gw: GATEWAY4 });
    if (addresses.some((a) => a.family === 6)) routes.push({ dst: '::/0', gw: veth.hostLinkLocal6 });

    step = `configuring ${env.ifname} in ${env.netns}`;
    await dataplane.configurePod({ netns: env.netns, ifname: env.ifname, hostVeth, addresses, routes });

    step = `configuring host side of ${hostVeth}`;
    await dataplane.configureHost({ hostVeth, addresses });

    // Last: felix-lite acts on the endpoint, so it appears only once the veth is ready.
    step = `writing WorkloadEndpoint ${wepKey.namespace}/${wepKey.name}`;
    try {
      await ctx.endpoints.put(endpointDoc(ctx, { hostVeth, mac: veth.containerMac, addresses }));
    } catch (e) {
      throw endpointError(e, step);
    }
    undo.push({
      what: `deletion of WorkloadEndpoint ${wepKey.name}`,
      run: () => ctx.endpoints.delete(wepKey),
    });

    const prev = conf.prevResult ?? emptyResult();
    const hostIdx = prev.interfaces.length;
    const interfaces: CniInterface[] = [
      ...prev.interfaces,
      { name: hostVeth, mac: veth.hostMac },
      { name: env.ifname, mac: veth.containerMac, mtu, sandbox: env.netns },
    ];
    const ips: IpConfig[] = [
      ...prev.ips,
      ...addresses.map((a) => ({
        address: a.cidr,
        gateway: a.family === 4 ? GATEWAY4 : veth.hostLinkLocal6,
        interface: hostIdx + 1,
      })),
    ];
    return {
      interfaces,
      ips,
      routes: [...prev.routes, ...routes],
      dns: dnsSet(conf.dns) ? conf.dns : prev.dns,
    };
  } catch (e) {
    const err = toCniError(e, fallback, step);
    const failed: string[] = [];
    for (const u of undo.reverse()) {
      try {
        await u.run();
      } catch (e2) {
        failed.push(`rollback: ${u.what} failed: ${e2 instanceof Error ? e2.message : String(e2)}`);
      }
    }
    ctx.log(
      'warn',
      `ADD ${env.containerId} failed at ${step}: ${err.message}; rolled back ${undo.length} step(s)`,
    );
    for (const f of failed) ctx.log('error', f);
    throw withTrailer(err, failed);
  }
}
