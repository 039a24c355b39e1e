// The pod veth MTU, as Calico's cmdAdd determines it (cni-plugin/pkg/plugin/plugin.go,
// "Determine MTU to use", and MTUFromFile in internal/pkg/utils/utils.go): the config's
// `mtu` when set and not 0; else the number in the MTU file the node daemon writes
// (@tabby/ipip/mtu-file); else 1500, with a warning, since a pod MTU above the tunnel's
// loses large packets. One difference: Calico reads the file even when the config sets
// `mtu`, so a garbled file fails every ADD; here the file is read only when it decides.
import { readFileSync } from 'node:fs';
import { MAX_MTU, MIN_MTU, parseMtuText } from '@tabby/ipip/mtu-file';
import { CniError, ErrorCode, errorText } from '../spec/errors.js';
import type { Ctx } from './context.js';

export const DEFAULT_MTU = 1500;

/**
 * The MTU for the pod's veth. Errors: 11 when `require_mtu_file` is set and the file is
 * missing (the node daemon has not written it yet), 5 when it cannot be read, 7 when it
 * holds no MTU (Calico: "failed to read MTU file").
 */
export function podMtu(ctx: Ctx, file: string): number {
  if (ctx.conf.mtu !== undefined) return ctx.conf.mtu;
  let text: string;
  try {
    // a few bytes: read at once, not behind the thread pool's queue in the node daemon
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new CniError(ErrorCode.IoFailure, `cannot read the MTU file ${file}`, errorText(e));
    if (ctx.conf.requireMtuFile)
      throw new CniError(
        ErrorCode.TryAgainLater,
        `the MTU file ${file} does not exist`,
        'require_mtu_file is set and the config has no mtu: the node daemon writes the file once it knows the host MTU',
      );
    ctx.log('warn', `no mtu in the config and no MTU file ${file}: pods get MTU ${DEFAULT_MTU}`);
    return DEFAULT_MTU;
  }
  const mtu = parseMtuText(text);
  if (mtu === undefined)
    throw new CniError(
      ErrorCode.InvalidConfig,
      `invalid MTU file ${file}`,
      `${JSON.stringify(text.trim().slice(0, 40))} is not an MTU (a decimal number, ${MIN_MTU} to ${MAX_MTU})`,
    );
  ctx.log('debug', `MTU ${mtu} from ${file}`);
  return mtu;
}
