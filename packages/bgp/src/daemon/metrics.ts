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

export class SpeakerMetrics {
  readonly state: Gauge;
  readonly transitions: Counter;
  readonly uptime: Gauge;
  readonly messages: Counter;
  readonly bytes: Counter;
  readonly prefixes: Gauge;
  readonly lastError: Gauge;
  readonly updateSeconds: Histogram;

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
    });
    this.bytes = new Counter({
      name: `${p}_message_bytes_total`,
      help: 'Bytes of BGP messages by direction.',
      labelNames: [...labels, 'direction'],
      registers: [registry],
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

  /** Deletes every series of a removed peer. */
  forget(peer: string, peerAsn: number): void {
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
