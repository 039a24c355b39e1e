// Update groups: the peers that get the same routes with the same attributes in the same
// encoding (same role, export policy and negotiated codec context) share one Adj-RIB-Out,
// and each UPDATE is encoded once and written to every member's socket (FRR's update
// groups; RFC 4271 leaves grouping to the implementation). In a cluster of N route-reflector
// clients this turns N exports, N tables and N encodings of every route into one.
//
// A peer that comes up while the group already has routes out first catches up on a private
// Adj-RIB-Out (its initial dump) and joins once both are drained: at that point both equal
// the export of the Loc-RIB, so the member's view and the group's agree (adj-rib-out.ts
// explains how split horizon keeps them equal). Sends happen only while every member's
// socket takes more, so a group's memory is bounded by its pending set, as for one peer; a
// member that stops reading holds the group until its send hold timer (RFC 9687) ends it.

import type { CompiledPolicy } from '../policy/index.js';
import type { CodecContext, PrefixAfi } from '../wire/index.js';
import { hasAddPath } from '../wire/index.js';
import type { AdjRibOut, OutSink } from './adj-rib-out.js';
import type { ExportMemo } from './export-cache.js';
import type { PeerRole } from './rules.js';

/** What an export is computed for: a peer, or a group (id -1: no split horizon). */
export interface ExportTarget {
  /** Peers of one class get the same export of a route; the export cache's key. */
  readonly exportClass: string;
  readonly role: PeerRole & { readonly id: number };
  readonly exportPolicy: CompiledPolicy;
  /** This target's last export-cache hit. */
  readonly memo: ExportMemo;
}

export interface GroupMember {
  readonly index: number;
  readonly peer: { send(bytes: Uint8Array): void; cork(): () => void; readonly writable: boolean };
}

export class UpdateGroup<M extends GroupMember> implements OutSink {
  /** Members in step with the group's table, by peer index. */
  readonly members = new Map<number, M>();
  /** Peers catching up on a private Adj-RIB-Out before they join. */
  readonly joining = new Set<M>();
  flushing = false;
  /** Done with (its last member gone, or caught up): nothing more is sent. */
  closed = false;

  constructor(
    readonly key: string,
    readonly afi: PrefixAfi,
    readonly out: AdjRibOut,
    readonly target: ExportTarget,
    /**
     * For a peer's private group while it catches up (initial table, or a refresh): the
     * group it joins once both are drained. A private group's target is the peer's own,
     * so split horizon is applied at export, and nothing here is shared.
     */
    readonly joins?: UpdateGroup<M>,
  ) {}

  /** Every member's socket takes more. */
  get writable(): boolean {
    for (const m of this.members.values()) if (!m.peer.writable) return false;
    return true;
  }

  get empty(): boolean {
    return this.members.size === 0 && this.joining.size === 0;
  }

  all(bytes: Uint8Array, except: number): void {
    for (const m of this.members.values()) if (m.index !== except) m.peer.send(bytes);
  }

  one(peer: number, bytes: Uint8Array): void {
    this.members.get(peer)?.peer.send(bytes);
  }
}

/** Peers with equal keys may share a group: same family, encoding and export class. */
export function groupKey(exportClass: string, afi: PrefixAfi, ctx: CodecContext): string {
  const enc = `${ctx.as4 ? 4 : 2}${ctx.extendedMessage ? 'x' : ''}${hasAddPath(ctx, afi, 1) ? 'p' : ''}`;
  return `${afi}/${enc}/${exportClass}`;
}
