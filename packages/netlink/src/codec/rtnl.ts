// Any rtnetlink message as a discriminated union: what dumps and the monitor hand out.
import type { AddressInfo } from './address.js';
import { decodeAddress } from './address.js';
import {
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
} from './constants.js';
import type { LinkInfo } from './link.js';
import { decodeLink } from './link.js';
import type { NeighbourInfo } from './neighbour.js';
import { decodeNeighbour } from './neighbour.js';
import type { NlHeader } from './reader.js';
import type { RouteInfo } from './route.js';
import { decodeRoute } from './route.js';

export type RtnlOp = 'new' | 'del';

export type RtnlMessage =
  | { readonly kind: 'link'; readonly op: RtnlOp; readonly link: LinkInfo }
  | { readonly kind: 'address'; readonly op: RtnlOp; readonly address: AddressInfo }
  | { readonly kind: 'route'; readonly op: RtnlOp; readonly route: RouteInfo }
  | { readonly kind: 'neighbour'; readonly op: RtnlOp; readonly neighbour: NeighbourInfo }
  /** A message type or address family this codec does not decode (MPLS routes, ...). */
  | { readonly kind: 'other'; readonly type: number };

export function decodeRtnl(buf: Buffer, h: NlHeader): RtnlMessage {
  const t = h.type;
  switch (t) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return { kind: 'link', op: t === RTM_NEWLINK ? 'new' : 'del', link: decodeLink(buf, h) };
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const address = decodeAddress(buf, h);
      return address === undefined
        ? { kind: 'other', type: t }
        : { kind: 'address', op: t === RTM_NEWADDR ? 'new' : 'del', address };
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const route = decodeRoute(buf, h);
      return route === undefined
        ? { kind: 'other', type: t }
        : { kind: 'route', op: t === RTM_NEWROUTE ? 'new' : 'del', route };
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const neighbour = decodeNeighbour(buf, h);
      return neighbour === undefined
        ? { kind: 'other', type: t }
        : { kind: 'neighbour', op: t === RTM_NEWNEIGH ? 'new' : 'del', neighbour };
    }
    default:
      return { kind: 'other', type: t };
  }
}
