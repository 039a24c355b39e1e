// The VXLAN device's MAC, derived from the node name as Calico's felix does
// (felix/calc/vxlan_resolver.go, vtepMACForHost): 0x66 ('f': locally administered, unicast)
// followed by the first five bytes of sha1(node name), with "-v6" appended to the name for
// the IPv6 device. Every node computes every other node's MAC the same way, so the MAC needs
// no allocation and survives restarts; Node.spec.vxlanTunnelMACAddr overrides it.
import { createHash } from 'node:crypto';

export function vxlanMacForNode(nodeName: string, family: 4 | 6 = 4): string {
  if (nodeName.length === 0) throw new TypeError('a VXLAN MAC needs a node name');
  const sha = createHash('sha1')
    .update(family === 6 ? `${nodeName}-v6` : nodeName)
    .digest();
  return [0x66, ...sha.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A MAC as the kernel prints it (lower case, colons), or undefined when it is not one. */
export function normalizeMac(text: string): string | undefined {
  const m =
    /^([0-9a-f]{2})([:-]?)([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(
      text.trim(),
    );
  if (m === null) return undefined;
  return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
}
