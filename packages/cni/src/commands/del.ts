// DEL: best effort and idempotent (SPEC.md §2 "DEL"). The WorkloadEndpoint goes first (so
// felix-lite stops routing to the pod), then the veth (so its address cannot be handed to a
// new pod while the old route still points here), then the address; each is attempted
// whatever the others did, and a missing endpoint, netns or veth is success.
import { ErrorCode } from '../spec/errors.js';
import { hostVethName } from '../spec/names.js';
import type { AttachmentCtx } from './context.js';
import { toCniError, withTrailer } from './errors.js';
import { ipamRelease } from './ipam-ops.js';
import { endpointKey } from './endpoint.js';
import { endpointError } from './errors.js';
import type { CniError } from '../spec/errors.js';

export async function del(ctx: AttachmentCtx): Promise<void> {
  const { env, conf, dataplane } = ctx;
  const hostVeth = hostVethName(env.containerId, env.args);
  const errors: CniError[] = [];
  try {
    const key = endpointKey(ctx);
    try {
      const r = await ctx.endpoints.delete(key);
      ctx.log('debug', `DEL ${env.containerId}: WorkloadEndpoint ${key.namespace}/${key.name} ${r}`);
    } catch (e) {
      errors.push(endpointError(e, `deleting WorkloadEndpoint ${key.namespace}/${key.name}`));
    }
  } catch (e) {
    // No valid name: ADD could not have written one.
    ctx.log('debug', `DEL ${env.containerId}: no WorkloadEndpoint: ${String(e)}`);
  }
  try {
    const r = await dataplane.removeVeth({ hostVeth, netns: env.netns, ifname: env.ifname });
    ctx.log('debug', `DEL ${env.containerId}: veth ${hostVeth} ${r}`);
  } catch (e) {
    errors.push(toCniError(e, ErrorCode.DataplaneFailed, `removing veth ${hostVeth}`));
  }
  try {
    await ipamRelease(ctx);
  } catch (e) {
    errors.push(toCniError(e, ErrorCode.IpamRefused, `releasing handle ${conf.name}.${env.containerId}`));
  }
  const [first, ...rest] = errors;
  if (first !== undefined)
    throw withTrailer(
      first,
      rest.map((e) => `also: ${e.message}`),
    );
}
