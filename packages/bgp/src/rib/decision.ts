// The decision process: RFC 4271 §9.1.2.2 with the route reflection tie-breakers of
// RFC 4456 §9, as a sequence of named steps. Each step narrows the set of candidates the
// way the RFC words it ("remove from consideration ..."), so MED, which only compares
// routes from the same neighbouring AS, is applied to the set, not pairwise: a pairwise
// MED comparator is not transitive and makes the winner depend on arrival order.
// The step that leaves one route standing is reported as the reason it is best.

import type { PathAttributes } from '../wire/index.js';

/** Where a route came from, as the decision needs it. */
export interface RouteSource {
  /** Originated by this speaker (its own blocks); preferred before any learned route. */
  readonly local: boolean;
  /** Learned over iBGP (the peer is in our AS). */
  readonly internal: boolean;
  /** The peer's BGP Identifier, as a uint32 (0 for local routes). */
  readonly routerId: number;
  /** The peer's address as comparable bytes (4 or 16); empty for local routes. */
  readonly address: Uint8Array;
}

/** The attribute values the decision reads, extracted once per attribute set. */
export interface DecisionAttributes {
  readonly localPref: number;
  /** RFC 4271 §9.1.2.2 a: AS_SET counts 1, confederation segments 0 (RFC 5065 §5.3). */
  readonly asPathLength: number;
  /** 0 IGP, 1 EGP, 2 INCOMPLETE. */
  readonly origin: number;
  /** Absent MED counts as 0, the best value (RFC 4271 §9.1.2.2 c). */
  readonly med: number;
  /** The leftmost AS of AS_PATH; 0 when the path is empty (a route of our own AS). */
  readonly neighborAs: number;
  readonly clusterListLength: number;
  /** ORIGINATOR_ID as uint32, or undefined. */
  readonly originatorId: number | undefined;
}

export interface Candidate {
  readonly source: RouteSource;
  readonly attrs: DecisionAttributes;
  /** IGP cost to the next hop (RFC 4271 §9.1.2.2 e); 0 where there is no IGP. */
  readonly igpCost: number;
  /** RFC 7911 path identifier: the last tie-break between paths from one peer. */
  readonly pathId?: number;
}

export interface DecisionOptions {
  /** Compare MED between routes from different neighbouring ASes too (not the RFC default). */
  readonly alwaysCompareMed?: boolean;
}

export type StepName =
  | 'onlyCandidate'
  | 'localOrigin'
  | 'localPref'
  | 'asPathLength'
  | 'origin'
  | 'med'
  | 'ebgpOverIbgp'
  | 'igpCost'
  | 'clusterListLength'
  | 'routerId'
  | 'peerAddress'
  | 'pathId';

interface Step {
  readonly name: StepName;
  /** Keeps the candidates this step prefers. */
  readonly narrow: (c: readonly Candidate[], o: Required<DecisionOptions>) => Candidate[];
}

/** Keeps the candidates with the lowest key. */
function keepLowest(key: (c: Candidate) => number) {
  return (cands: readonly Candidate[]): Candidate[] => {
    let best = Infinity;
    for (const c of cands) best = Math.min(best, key(c));
    return cands.filter((c) => key(c) === best);
  };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** The steps in the order the RFCs give, each named for logs and "why is this best?". */
export const DECISION_STEPS: readonly Step[] = [
  // Routes we originate win over learned ones (as a weight would in other speakers).
  { name: 'localOrigin', narrow: keepLowest((c) => (c.source.local ? 0 : 1)) },
  // §9.1.1: the degree of preference, LOCAL_PREF, highest first.
  { name: 'localPref', narrow: keepLowest((c) => -c.attrs.localPref) },
  // §9.1.2.2 a: shortest AS_PATH.
  { name: 'asPathLength', narrow: keepLowest((c) => c.attrs.asPathLength) },
  // §9.1.2.2 b: lowest ORIGIN.
  { name: 'origin', narrow: keepLowest((c) => c.attrs.origin) },
  // §9.1.2.2 c: "remove from consideration routes with less-preferred MULTI_EXIT_DISC
  // attributes. MULTI_EXIT_DISC is only comparable between routes learned from the same
  // neighboring AS".
  {
    name: 'med',
    narrow: (cands, o) => {
      if (o.alwaysCompareMed) return keepLowest((c) => c.attrs.med)(cands);
      const bestByAs = new Map<number, number>();
      for (const c of cands) {
        const cur = bestByAs.get(c.attrs.neighborAs);
        if (cur === undefined || c.attrs.med < cur) bestByAs.set(c.attrs.neighborAs, c.attrs.med);
      }
      return cands.filter((c) => c.attrs.med === bestByAs.get(c.attrs.neighborAs));
    },
  },
  // §9.1.2.2 d: routes learned over eBGP before those learned over iBGP.
  { name: 'ebgpOverIbgp', narrow: keepLowest((c) => (c.source.internal ? 1 : 0)) },
  // §9.1.2.2 e: lowest interior cost to the next hop.
  { name: 'igpCost', narrow: keepLowest((c) => c.igpCost) },
  // RFC 4456 §9: "a route with a shorter CLUSTER_LIST length SHOULD be preferred".
  { name: 'clusterListLength', narrow: keepLowest((c) => c.attrs.clusterListLength) },
  // §9.1.2.2 f, with RFC 4456 §9: "If a route carries the ORIGINATOR_ID attribute, then in
  // Step f) of Section 9.1.2.2 of [3], the ORIGINATOR_ID SHOULD be treated as the BGP
  // Identifier of the BGP speaker that has advertised the route."
  { name: 'routerId', narrow: keepLowest((c) => c.attrs.originatorId ?? c.source.routerId) },
  // §9.1.2.2 g: lowest peer address.
  {
    name: 'peerAddress',
    narrow: (cands) => {
      let best = cands[0]!;
      for (const c of cands) if (compareBytes(c.source.address, best.source.address) < 0) best = c;
      return cands.filter((c) => compareBytes(c.source.address, best.source.address) === 0);
    },
  },
  // Several ADD-PATH paths from one peer can tie on everything above.
  { name: 'pathId', narrow: keepLowest((c) => c.pathId ?? 0) },
];

/** Steps after which equal routes may share traffic (ECMP): up to and including igpCost. */
const MULTIPATH_THROUGH: StepName = 'igpCost';

export interface Decision<C extends Candidate> {
  readonly best: C;
  /** The step that left `best` alone; 'onlyCandidate' when there was one route. */
  readonly decidedBy: StepName;
  /**
   * Routes equal to the best through the IGP cost step, and (for eBGP) from the same
   * neighbouring AS: what may be installed together for ECMP. Always contains best.
   */
  readonly multipath: readonly C[];
}

/** Chooses the best of the candidates (at least one). Deterministic whatever their order. */
export function decide<C extends Candidate>(
  candidates: readonly C[],
  options: DecisionOptions = {},
): Decision<C> {
  if (candidates.length === 0) throw new RangeError('decide() needs at least one candidate');
  const o: Required<DecisionOptions> = { alwaysCompareMed: options.alwaysCompareMed ?? false };
  if (candidates.length === 1)
    return { best: candidates[0]!, decidedBy: 'onlyCandidate', multipath: candidates };
  let set: readonly C[] = candidates;
  let multipath: readonly C[] | undefined;
  let decidedBy: StepName = 'pathId';
  for (const step of DECISION_STEPS) {
    set = step.narrow(set, o) as C[];
    if (step.name === MULTIPATH_THROUGH) multipath = set;
    if (set.length === 1) {
      decidedBy = step.name;
      break;
    }
  }
  const best = set[0]!;
  // Multipath members must also share the neighbouring AS for eBGP (the usual rule:
  // "multipath-relax" is a separate choice).
  const group = (multipath ?? [best]).filter(
    (c) => c === best || c.source.internal || c.attrs.neighborAs === best.attrs.neighborAs,
  );
  return { best, decidedBy, multipath: group.includes(best) ? group : [best, ...group] };
}

/** Extracts what the decision reads from an attribute set. */
export function decisionAttributes(a: PathAttributes, defaultLocalPref = 100): DecisionAttributes {
  let asPathLength = 0;
  let neighborAs = 0;
  for (const seg of a.asPath ?? []) {
    if (seg.type === 'sequence') asPathLength += seg.asns.length;
    else if (seg.type === 'set') asPathLength += 1;
    // RFC 5065 §5.3: confederation segments do not count.
    if (neighborAs === 0 && (seg.type === 'sequence' || seg.type === 'set')) neighborAs = seg.asns[0] ?? 0;
  }
  const origin = a.origin === 'igp' ? 0 : a.origin === 'egp' ? 1 : 2;
  let originatorId: number | undefined;
  if (a.originatorId !== undefined) {
    const p = a.originatorId.split('.').map(Number);
    originatorId = (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
  }
  return {
    // The import stage has already dropped a LOCAL_PREF received from an external peer
    // (RFC 4271 §5.1.5) and applied policy, which may set one.
    localPref: a.localPref ?? defaultLocalPref,
    asPathLength,
    origin,
    med: a.multiExitDisc ?? 0,
    neighborAs,
    clusterListLength: a.clusterList?.length ?? 0,
    originatorId,
  };
}
