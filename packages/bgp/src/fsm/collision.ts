// Connection collision resolution (RFC 4271 §6.8, RFC 6286 §2.3).

import type { Asn } from '../wire/index.js';
import { parseIpv4 } from '../wire/index.js';

export type Initiator = 'local' | 'remote';

/**
 * Which of two connections to the same peer survives: the one initiated by the speaker
 * with the higher BGP Identifier (RFC 4271 §6.8: "If the value of the local BGP Identifier
 * is less than the remote one, the local system closes the BGP connection that already
 * exists ... and accepts the BGP connection initiated by the remote system"). When the
 * identifiers are equal (possible between ASes, RFC 6286 §2.2), RFC 6286 §2.3: the
 * connection initiated by the speaker with the larger AS number survives.
 * An Established connection always survives; that check is the caller's.
 */
export function collisionWinner(
  local: { id: string; asn: Asn },
  remote: { id: string; asn: Asn },
): Initiator {
  const l = parseIpv4(local.id) ?? 0;
  const r = parseIpv4(remote.id) ?? 0;
  if (l !== r) return l > r ? 'local' : 'remote';
  return local.asn > remote.asn ? 'local' : 'remote';
}
