// GC (SPEC.md §2, spec 1.1.0): release every IPAM handle of this network whose container is
// not in cni.dev/valid-attachments. The netns of a stale attachment is gone already (the spec
// lets us assume it), and its veth with it. Errors do not stop the sweep; all are reported.
import { CniError, ErrorCode } from '../spec/errors.js';
import type { Ctx, Ipam } from './context.js';
import { toCniError } from './errors.js';
import { ipamGc } from './ipam-ops.js';

export async function gc(ctx: Ctx, ipam: Ipam | undefined): Promise<{ released: string[] }> {
  const valid = ctx.conf.validAttachments;
  if (valid === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network config: cni.dev/valid-attachments',
      'GC needs the list of valid attachments (an empty list releases everything)',
    );
  if (ipam === undefined) return { released: [] };
  let out;
  try {
    out = await ipamGc(ctx, ipam, new Set(valid.map((a) => a.containerID)));
  } catch (e) {
    throw toCniError(e, ErrorCode.GcIncomplete, 'GC');
  }
  for (const h of out.released) ctx.log('info', `GC released ${h}`);
  if (out.errors.length > 0)
    throw new CniError(
      ErrorCode.GcIncomplete,
      `GC could not release ${out.errors.length} handle(s)`,
      out.errors.join('; '),
    );
  return { released: out.released };
}
