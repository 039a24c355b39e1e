// STATUS (SPEC.md §2, spec 1.1.0): can an ADD succeed now? Tabby's IPAM answers (datastore
// reachable, a pool with free addresses); a delegated IPAM plugin is asked in turn.
import { CniError, ErrorCode } from '../spec/errors.js';
import type { Ctx, Ipam } from './context.js';
import { toCniError } from './errors.js';

export async function status(ctx: Ctx, ipam: Ipam | undefined): Promise<void> {
  if (ipam === undefined) return;
  if (ipam.kind === 'delegated') {
    await ipam.exec(ipam.type, 'STATUS', JSON.stringify(ctx.conf.raw));
    return;
  }
  let s;
  try {
    s = await ipam.client.status();
  } catch (e) {
    throw toCniError(e, ErrorCode.PluginNotAvailable, 'IPAM status');
  }
  if (!s.ok) throw new CniError(s.code, s.msg, s.details);
}
