// DEL: best effort and idempotent (SPEC.md §2 "DEL"). The veth goes first (so its address
// cannot be handed to a new pod while the old route still points here), then the address;
// both are attempted whatever the other did, and a missing netns or veth is success.
import { ErrorCode } from '../spec/errors.js';
import { hostVethName } from '../spec/names.js';
import type { AttachmentCtx } from './context.js';
import { toCniError, withTrailer } from './errors.js';
import { ipamRelease } from './ipam-ops.js';
import type { CniError } from '../spec/errors.js';

export async function del(ctx: AttachmentCtx): Promise<void> {
  const { env, conf, dataplane } = ctx;
  const hostVeth = hostVethName(env.containerId, env.args);
  const errors: CniError[] = [];
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
