// Shared by the interop tests (interop*.test.ts): polling, loopback addresses, the daemon
// kinds with their skip rule, and `Side`, one bgp-ts speaker peering with a daemon.

import { spawnSync } from 'node:child_process';
import type { DaemonKind } from '../harness/daemons.js';
import { daemonUnavailable } from '../harness/daemons.js';
import { until as untilShared } from './helpers.js';
import type { BestPathEvent } from '../src/rib/index.js';
import type { PeerSettings, SpeakerConfig, SpeakerDeps } from '../src/speaker/index.js';
import { Speaker } from '../src/speaker/index.js';
import { asn } from '../src/wire/index.js';

/** Polls until f() holds (f may throw: a failed CLI call counts as "not yet"). */
/** helpers.until with the interop pace: daemons take seconds, their CLIs are polled every 50 ms. */
export const until = (f: () => boolean | Promise<boolean>, what: string, ms = 15000): Promise<void> =>
  untilShared(f, what, ms, 50);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** 127.0.x.y from a 16-bit number. */
export const addr = (n: number) => `127.0.${n >> 8}.${n & 255}`;

export const KINDS: DaemonKind[] = ['bird', 'frr', 'gobgp'];

/**
 * The skip option for a daemon's tests: a missing daemon skips with the reason, except
 * under CI=true, where .ci/run installs them and the test fails (see `requireDaemon`).
 */
export function daemonSkip(kind: DaemonKind): string | false {
  const missing = daemonUnavailable(kind);
  return missing !== undefined && process.env['CI'] !== 'true' ? `${kind} not available: ${missing}` : false;
}

/** First line of a daemon test: fails under CI when the daemon is missing. */
export function requireDaemon(kind: DaemonKind): void {
  const missing = daemonUnavailable(kind);
  if (missing !== undefined) throw new Error(`${kind} is required under CI: ${missing}`);
}

/**
 * Puts IPv6 addresses on `lo` (idempotent: present ones are left alone). Returns why it
 * could not, or undefined. 127/8 needs nothing: the kernel answers for all of it.
 */
export function ensureLoopbackIpv6(addresses: readonly string[]): string | undefined {
  const shown = spawnSync('ip', ['-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  if (shown.error !== undefined) return `cannot run ip(8): ${shown.error.message}`;
  for (const a of addresses) {
    if (new RegExp(`inet6 ${a.replace(/\./g, '\\.')}/128 `).test(shown.stdout)) continue;
    // nodad: usable at once (lo does no duplicate address detection anyway).
    const r = spawnSync('ip', ['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad'], { encoding: 'utf8' });
    if (r.status !== 0 && !/File exists/.test(r.stderr)) {
      return `cannot add ${a}/128 to lo (${r.stderr.trim() || `exit ${r.status}`}); run as root or add it by hand`;
    }
  }
  return undefined;
}

/** One bgp-ts speaker peering with the daemon under test. */
export class Side {
  readonly best = new Map<string, BestPathEvent & { type: 'add' | 'replace' }>();
  /** Messages by direction and kind ("in update", "out routeRefresh", "in routeRefresh/0"). */
  readonly counts = new Map<string, number>();
  /** In order: "add P", "replace P", "withdraw P", "established", "down", "eor ipv4-unicast". */
  readonly log: string[] = [];
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  readonly speaker: Speaker;
  readonly routerId: string;
  constructor(
    id: number,
    localAsn: number,
    daemon: { address: string; port: number; asn: number },
    originate: string[],
    extra: Partial<PeerSettings> = {},
    speakerExtra: Partial<Pick<SpeakerConfig, 'restarting'>> = {},
    deps: SpeakerDeps = {},
  ) {
    const p: PeerSettings = {
      name: 'daemon',
      address: daemon.address,
      port: daemon.port,
      localAddress: addr(id),
      // Not the 127/8 session address: FRR refuses loopback next hops as martians.
      nextHopIpv4: `192.0.2.${id & 255}`,
      nextHopIpv6: `fd00::${id.toString(16)}`,
      asn: asn(daemon.asn),
      holdTime: 9,
      connectRetryTime: 1,
      ...extra,
    };
    const attributes = {
      communities: [((localAsn << 16) | 7) >>> 0],
      largeCommunities: [{ globalAdministrator: localAsn, localData1: 1, localData2: 2 }],
    };
    this.routerId = `10.255.${id >> 8}.${id & 255}`;
    this.speaker = new Speaker(
      {
        routerId: this.routerId,
        localAsn: asn(localAsn),
        peers: [p],
        originate: originate.map((prefix) => ({ prefix, attributes })),
        ...speakerExtra,
      },
      deps,
      {
        bestPath: (e) => {
          this.log.push(`${e.type} ${e.prefix}`);
          if (e.type === 'withdraw') this.best.delete(e.prefix);
          else this.best.set(e.prefix, e);
        },
        peerState: (_name, from, to) => {
          if (to === 'established') this.log.push('established');
          else if (from === 'established') this.log.push('down');
        },
        endOfRib: (_name, family) => this.log.push(`eor ${family}`),
        message: (_name, dir, type, _bytes, m) => {
          const keys = [`${dir} ${type}`];
          if (m?.type === 'routeRefresh') keys.push(`${dir} ${type}/${m.subtype}`);
          for (const k of keys) this.counts.set(k, this.count(k) + 1);
        },
      },
    );
  }
}
