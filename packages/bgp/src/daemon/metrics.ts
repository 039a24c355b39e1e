// Prometheus metrics of the speaker, defined in one place on an injected registry. Names
// follow <prefix>_<subsystem>_<name>_<unit>, `_total` only on counters; a removed peer's
// label values are deleted (MetalLB's DeleteSession).

import { Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Registry } from 'prom-client';
import type { State } from '../fsm/index.js';

export const STATE_CODES: Record<State, number> = {
  idle: 1,
  connect: 2,
  active: 3,
  openSent: 4,
  openConfirm: 5,
  established: 6,
};

export interface PeerSample {
  readonly peer: string;
  readonly peerAsn: number;
  readonly state: State;
  /** Seconds the session has been Established; 0 when it is not. */
  readonly uptime: number;
  readonly received: number;
  readonly accepted: number;
  readonly advertised: number;
  readonly lastErrorCode: number;
}

const DIRECTIONS = ['in', 'out'] as const;
const KINDS = ['open', 'update', 'notification', 'keepalive', 'routeRefresh'] as const;
type Direction = (typeof DIRECTIONS)[number];
type Kind = (typeof KINDS)[number];
const KIND_INDEX: Record<Kind, number> = {
  open: 0,
  update: 1,
  notification: 2,
  keepalive: 3,
  routeRefresh: 4,
};
/** Per peer: message counts by direction and kind, then bytes by direction. */
const SLOTS = DIRECTIONS.length * KINDS.length + DIRECTIONS.length;

export class SpeakerMetrics {
  readonly state: Gauge;
  readonly transitions: Counter;
  readonly uptime: Gauge;
  readonly messages: Counter;
  readonly bytes: Counter;
  readonly prefixes: Gauge;
  readonly lastError: Gauge;
  readonly updateSeconds: Histogram;
  /**
   * Message and byte counts, kept as plain numbers per peer and handed to the counters at
   * scrape time: a labelled inc() per message (a label hash each) cost a sixth of the
   * speaker's CPU when sending to hundreds of peers.
   */
  private readonly traffic = new Map<string, { readonly peerAsn: number; readonly n: Float64Array }>();

  constructor(registry: Registry, sample: () => PeerSample[], prefix = 'bgp_ts') {
    const p = `${prefix}_peer`;
    const labels = ['peer', 'peer_asn'] as const;
    this.state = new Gauge({
      name: `${p}_session_state`,
      help: 'BGP FSM state of the session: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established.',
      labelNames: labels,
      registers: [registry],
      collect: () => {
        for (const s of sample()) this.state.set({ peer: s.peer, peer_asn: s.peerAsn }, STATE_CODES[s.state]);
      },
    });
    this.transitions = new Counter({
      name: `${p}_established_transitions_total`,
      help: 'Times the session reached Established.',
      labelNames: labels,
      registers: [registry],
    });
    this.uptime = new Gauge({
      name: `${p}_uptime_seconds`,
      help: 'Seconds since the session reached Established; 0 when it is not Established.',
      labelNames: labels,
      registers: [registry],
      collect: () => {
        for (const s of sample()) this.uptime.set({ peer: s.peer, peer_asn: s.peerAsn }, s.uptime);
      },
    });
    this.messages = new Counter({
      name: `${p}_messages_total`,
      help: 'BGP messages by direction (in, out) and type (open, update, notification, keepalive, routeRefresh).',
      labelNames: [...labels, 'direction', 'type'],
      registers: [registry],
      collect: () => {
        this.messages.reset();
        for (const [peer, t] of this.traffic)
          DIRECTIONS.forEach((direction, d) =>
            KINDS.forEach((type, k) => {
              const v = t.n[d * KINDS.length + k] as number;
              if (v > 0) this.messages.inc({ peer, peer_asn: t.peerAsn, direction, type }, v);
            }),
          );
      },
    });
    this.bytes = new Counter({
      name: `${p}_message_bytes_total`,
      help: 'Bytes of BGP messages by direction.',
      labelNames: [...labels, 'direction'],
      registers: [registry],
      collect: () => {
        this.bytes.reset();
        for (const [peer, t] of this.traffic)
          DIRECTIONS.forEach((direction, d) => {
            const v = t.n[DIRECTIONS.length * KINDS.length + d] as number;
            if (v > 0) this.bytes.inc({ peer, peer_asn: t.peerAsn, direction }, v);
          });
      },
    });
    this.prefixes = new Gauge({
      name: `${p}_prefixes`,
      help: 'Prefixes: received (Adj-RIB-In), accepted (after import policy), advertised (Adj-RIB-Out).',
      labelNames: [...labels, 'kind'],
      registers: [registry],
      collect: () => {
        for (const s of sample()) {
          for (const kind of ['received', 'accepted', 'advertised'] as const) {
            this.prefixes.set({ peer: s.peer, peer_asn: s.peerAsn, kind }, s[kind]);
          }
        }
      },
    });
    this.lastError = new Gauge({
      name: `${p}_last_error_code`,
      help: 'NOTIFICATION error code of the last error on the session (sent or received); 0 for none.',
      labelNames: labels,
      registers: [registry],
      collect: () => {
        for (const s of sample()) this.lastError.set({ peer: s.peer, peer_asn: s.peerAsn }, s.lastErrorCode);
      },
    });
    this.updateSeconds = new Histogram({
      name: `${prefix}_update_processing_seconds`,
      help: 'Time to process one received UPDATE: import, policy, decision, export queueing.',
      buckets: [0.00001, 0.0001, 0.001, 0.01, 0.1, 1],
      registers: [registry],
    });
    // Node's own: event-loop lag (nodejs_eventloop_lag_seconds), memory, GC.
    collectDefaultMetrics({ register: registry, prefix: `${prefix}_` });
  }

  /** Counts one message in or out. */
  countMessage(peer: string, peerAsn: number, direction: Direction, type: Kind, bytes: number): void {
    let t = this.traffic.get(peer);
    if (t === undefined) {
      t = { peerAsn, n: new Float64Array(SLOTS) };
      this.traffic.set(peer, t);
    }
    const d = direction === 'in' ? 0 : 1;
    const m = d * KINDS.length + KIND_INDEX[type];
    const b = DIRECTIONS.length * KINDS.length + d;
    t.n[m] = (t.n[m] as number) + 1;
    t.n[b] = (t.n[b] as number) + bytes;
  }

  /** Deletes every series of a removed peer. */
  forget(peer: string, peerAsn: number): void {
    this.traffic.delete(peer);
    for (const m of [this.state, this.transitions, this.uptime, this.lastError])
      m.remove({ peer, peer_asn: peerAsn });
    for (const kind of ['received', 'accepted', 'advertised'])
      this.prefixes.remove({ peer, peer_asn: peerAsn, kind });
    for (const direction of ['in', 'out']) {
      this.bytes.remove({ peer, peer_asn: peerAsn, direction });
      for (const type of ['open', 'update', 'notification', 'keepalive', 'routeRefresh']) {
        this.messages.remove({ peer, peer_asn: peerAsn, direction, type });
      }
    }
  }
}
