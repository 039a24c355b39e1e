// The IPAM half of each command, for both kinds of IPAM: Tabby's own (an IpamClient called
// in-process) and a delegated plugin (run from CNI_PATH with the whole config, SPEC.md §4).
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import { cidrFamily, ipOf, parseResult } from '../spec/result.js';
import { ipamHandle } from '../spec/names.js';
import type { IpamCtx, Ctx, Ipam } from './context.js';
import { toCniError } from './errors.js';
import type { IpamAttrs } from './interfaces.js';

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
