// A monitor: a netlink socket bound to rtnetlink multicast groups, handing each
// notification over as a typed RtnlMessage. When the kernel drops notifications (receive
// buffer overrun, ENOBUFS) the monitor says so through onOverrun: the listener's view is
// stale and it must dump again (the reconciler's resync).
import {
  RTMGRP_IPV4_IFADDR,
  RTMGRP_IPV4_ROUTE,
  RTMGRP_IPV6_IFADDR,
  RTMGRP_IPV6_ROUTE,
  RTMGRP_LINK,
  RTMGRP_NEIGH,
} from '../codec/constants.js';
import { NetlinkError } from '../codec/errors.js';
import type { RtnlMessage } from '../codec/rtnl.js';
import { decodeRtnl } from '../codec/rtnl.js';
import { NetlinkSocket } from './socket.js';

export type MonitorGroup =
  'link' | 'ipv4-address' | 'ipv6-address' | 'ipv4-route' | 'ipv6-route' | 'neighbour';

const GROUP_BITS: Readonly<Record<MonitorGroup, number>> = {
  link: RTMGRP_LINK,
  'ipv4-address': RTMGRP_IPV4_IFADDR,
  'ipv6-address': RTMGRP_IPV6_IFADDR,
  'ipv4-route': RTMGRP_IPV4_ROUTE,
  'ipv6-route': RTMGRP_IPV6_ROUTE,
  neighbour: RTMGRP_NEIGH,
};

export interface MonitorOptions {
  readonly netns?: string;
  readonly groups: readonly MonitorGroup[];
  readonly onMessage: (m: RtnlMessage) => void;
  /** Notifications were lost: resync from a dump. */
  readonly onOverrun: (e: NetlinkError) => void;
  /** A notification that does not decode; default: treated as an overrun (state unknown). */
  readonly onError?: (e: Error) => void;
  /** Receive buffer (default 8 MiB). */
  readonly rcvbuf?: number;
}

export class RtnlMonitor {
  private readonly sock: NetlinkSocket;

  private constructor(opts: MonitorOptions) {
    let groups = 0;
    for (const g of opts.groups) groups |= GROUP_BITS[g];
    if (groups === 0) throw new TypeError('a monitor needs at least one group');
    const so: { netns?: string; groups: number; rcvbuf?: number } = { groups };
    if (opts.netns !== undefined) so.netns = opts.netns;
    if (opts.rcvbuf !== undefined) so.rcvbuf = opts.rcvbuf;
    this.sock = new NetlinkSocket(so);
    this.sock.onNotification = (buf, h) => {
      let m: RtnlMessage;
      try {
        m = decodeRtnl(buf, h);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        if (opts.onError) opts.onError(err);
        else
          opts.onOverrun(new NetlinkError(74 /* EBADMSG */, 'monitor', err.message, undefined, { cause: e }));
        return;
      }
      opts.onMessage(m);
    };
    this.sock.onSocketError = opts.onOverrun;
    this.sock.setKeepAlive(true);
  }

  static open(opts: MonitorOptions): RtnlMonitor {
    return new RtnlMonitor(opts);
  }

  /** Let the process exit while the monitor is open (as timer.unref()). */
  unref(): this {
    this.sock.setKeepAlive(false);
    return this;
  }

  ref(): this {
    this.sock.setKeepAlive(true);
    return this;
  }

  close(): void {
    this.sock.close();
  }
}
