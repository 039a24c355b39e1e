// GC (SPEC.md §2, spec 1.1.0): release every IPAM handle of this network whose container is
// not in cni.dev/valid-attachments, and delete this node's WorkloadEndpoints of this network
// whose (containerID, ifname) is not one of them. The netns of a stale attachment is gone
// already (the spec lets us assume it), and its veth with it. Errors do not stop the sweep;
// all are reported.
import { CniError, ErrorCode } from '../spec/errors.js';
import type { Ctx, Ipam } from './context.js';
import { endpointError, toCniError } from './errors.js';
import type { EndpointStore } from './interfaces.js';
import { ipamGc } from './ipam-ops.js';

export interface GcEndpoints {
  readonly store: EndpointStore;
  readonly node: string;
}

export async function gc(
  ctx: Ctx,
  ipam: Ipam | undefined,
  endpoints: GcEndpoints | undefined,
): Promise<{ released: string[]; deleted: string[] }> {
  const valid = ctx.conf.validAttachments;
  if (valid === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: cni.dev/valid-attachments',
      'GC needs the list of valid attachments (an empty list releases everything)',
    );
  const errors: string[] = [];
  const deleted: string[] = [];
  if (endpoints !== undefined) {
    const keep = new Set(valid.map((a) => `${a.containerID}\n${a.ifname}`));
    let stored;
    try {
      stored = await endpoints.store.list(endpoints.node, ctx.conf.name);
    } catch (e) {
      throw endpointError(e, 'GC: listing WorkloadEndpoints');
    }
    for (const w of stored) {
      if (keep.has(`${w.containerID}\n${w.endpoint}`)) continue;
      try {
        await endpoints.store.delete(w);
        deleted.push(`${w.namespace}/${w.name}`);
      } catch (e) {
        errors.push(`WorkloadEndpoint ${w.namespace}/${w.name}: ${endpointError(e, 'delete').message}`);
      }
    }
  }
  for (const w of deleted) ctx.log('info', `GC deleted WorkloadEndpoint ${w}`);
  let released: string[] = [];
  if (ipam !== undefined) {
    let out;
    try {
      out = await ipamGc(ctx, ipam, new Set(valid.map((a) => a.containerID)));
    } catch (e) {
      throw toCniError(e, ErrorCode.GcIncomplete, 'GC');
    }
    for (const h of out.released) ctx.log('info', `GC released ${h}`);
    released = out.released;
    errors.push(...out.errors);
  }
  if (errors.length > 0)
    throw new CniError(
      ErrorCode.GcIncomplete,
      `GC could not remove ${errors.length} item(s)`,
      errors.join('; '),
    );
  return { released, deleted };
}
