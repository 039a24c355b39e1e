// One configured neighbour: its connections, collision resolution between them (RFC 4271
// §6.8), and restarts with damping (RFC 4271 §8.1.1 IdleHoldTimer, DampPeerOscillations).
//
// Each Connection runs the FSM once, from Idle back to Idle. The peer keeps at most one
// outgoing and one incoming connection; when both have an OPEN, the collision rule keeps one
// and the other alone is sent Cease / Connection Collision Resolution. An Established
// connection always wins. Hazards other speakers hit, tested here: two sessions or none
// after simultaneous dials (FRR #1219); the Cease sent on the winning socket (zebra-rs
// #2350); dial loops while a session is up.

import type { FsmConfig, NegotiatedSession, State, TransitionReason } from '../fsm/index.js';
import { collisionWinner } from '../fsm/index.js';
import type {
  BgpMessage,
  NotificationMessage,
  OpenMessage,
  RouteRefreshMessage,
  UpdateMessage,
} from '../wire/index.js';
import { openAsn } from '../wire/index.js';
import type { Clock } from './clock.js';
import type { ConnectionHooks, Direction, MessageKind } from './connection.js';
import { Connection } from './connection.js';
import type { Transport } from './transport.js';

export interface PeerConfig extends Omit<FsmConfig, 'idleHold'> {
  /** Seconds before the first automatic restart after a failure, doubled per failure. */
  readonly idleHoldTime: number;
  readonly maxIdleHoldTime: number;
}

export interface PeerEvents {
  stateChanged?(from: State, to: State, reason: TransitionReason): void;
  established?(session: NegotiatedSession): void;
  update?(update: UpdateMessage): void;
  routeRefresh?(message: RouteRefreshMessage): void;
  down?(reason: TransitionReason): void;
  writable?(): void;
  message?(direction: 'in' | 'out', type: MessageKind, bytes: number, message?: BgpMessage): void;
  /** A collision was resolved: which rule decided, which connection stays. */
  collision?(c: CollisionResolution): void;
}

export interface CollisionResolution {
  /** 'established': an Established connection always stays; 'identifier': RFC 4271 §6.8. */
  readonly rule: 'established' | 'identifier';
  readonly kept: Direction;
  readonly dropped: Direction;
}

const ORDER: Record<State, number> = {
  idle: 0,
  connect: 1,
  active: 1,
  openSent: 2,
  openConfirm: 3,
  established: 4,
};

export class Peer {
  private conns = new Set<Connection>();
  private up = false;
  private restartCancel: (() => void) | undefined;
  private idleHold: number;
  private reported: State = 'idle';
  private current: Connection | undefined;

  constructor(
    readonly config: PeerConfig,
    private readonly deps: { clock: Clock; dial?: () => Promise<Transport> },
    private readonly events: PeerEvents = {},
  ) {
    this.idleHold = config.idleHoldTime;
  }

  /** The most advanced state among this peer's connections. */
  get state(): State {
    // RFC 4271 §8.2.2: a passive start waits in Active for the peer to connect.
    let s: State = this.up && this.config.passive ? 'active' : 'idle';
    for (const c of this.conns) if (ORDER[c.state] > ORDER[s]) s = c.state;
    return s;
  }

  /** The Established session, if any. */
  get session(): NegotiatedSession | undefined {
    return this.current?.state === 'established' ? this.current.fsm.session : undefined;
  }

  get connections(): readonly Connection[] {
    return [...this.conns];
  }

  start(): void {
    if (this.up) return;
    this.up = true;
    this.idleHold = this.config.idleHoldTime;
    if (!this.config.passive) this.spawn('outgoing');
  }

  /** Administrative stop: every connection gets the NOTIFICATION (Cease/2 by default). */
  stop(notification?: NotificationMessage): void {
    this.up = false;
    this.restartCancel?.();
    this.restartCancel = undefined;
    for (const c of [...this.conns])
      c.input(notification === undefined ? { type: 'manualStop' } : { type: 'manualStop', notification });
  }

  /**
   * Closes every connection without a NOTIFICATION, as a crash would (for a graceful
   * restart of our own, RFC 4724), and does not restart.
   */
  abort(): void {
    this.up = false;
    this.restartCancel?.();
    this.restartCancel = undefined;
    for (const c of [...this.conns]) c.abort();
  }

  /** An automatic stop (e.g. Cease/1 on max-prefix); restarts later with damping. */
  reset(notification: NotificationMessage): void {
    for (const c of [...this.conns]) c.input({ type: 'automaticStop', notification });
  }

  /** A connection the listener accepted from this peer's address. */
  acceptIncoming(t: Transport): void {
    if (!this.up) {
      t.destroy();
      return;
    }
    // At most one incoming connection: a newer one replaces one still before OPEN, which
    // is told so with Cease / Connection Collision Resolution.
    for (const c of this.conns) {
      if (c.direction === 'incoming' && ORDER[c.state] < ORDER.openConfirm)
        c.input({ type: 'openCollisionDump' });
    }
    this.spawn('incoming', t);
  }

  /** Sends encoded bytes on the Established session; false: wait for the writable event. */
  send(bytes: Uint8Array): boolean {
    return this.current?.sendRaw(bytes) ?? false;
  }

  get writable(): boolean {
    return this.current?.writable ?? false;
  }

  /** Our address on the Established session (the socket's), if there is one. */
  get localAddress(): string | undefined {
    return this.current?.localAddress;
  }

  /** Gathers what is sent until the returned function runs into as few writes as can be. */
  cork(): () => void {
    return this.current?.cork() ?? (() => {});
  }

  private spawn(direction: Direction, t?: Transport): void {
    const hooks: ConnectionHooks = {
      beforeOpen: (conn, open) => this.beforeOpen(conn, open),
      onStateChange: (conn, from, to, reason) => this.stateChange(conn, from, to, reason),
      onEstablished: (conn, session) => {
        this.current = conn;
        this.idleHold = this.config.idleHoldTime;
        this.events.established?.(session);
      },
      onUpdate: (conn, u) => {
        if (conn === this.current) this.events.update?.(u);
      },
      onRouteRefresh: (conn, m) => {
        if (conn === this.current) this.events.routeRefresh?.(m);
      },
      onSessionDown: (conn, reason) => {
        if (conn === this.current) {
          this.current = undefined;
          this.events.down?.(reason);
        }
      },
      onWritable: (conn) => {
        if (conn === this.current) this.events.writable?.();
      },
      onMessage: (_conn, dir, type, bytes, m) => this.events.message?.(dir, type, bytes, m),
    };
    // Restarts are the peer's (it sees both connections), so the machines get no IdleHold.
    const { idleHoldTime: _i, maxIdleHoldTime: _m, ...fsmConfig } = this.config;
    const conn = new Connection(
      fsmConfig,
      direction,
      this.deps.dial === undefined
        ? { clock: this.deps.clock, hooks }
        : { clock: this.deps.clock, dial: this.deps.dial, hooks },
    );
    this.conns.add(conn);
    if (t === undefined) conn.start(false);
    else conn.startIncoming(t);
  }

  private beforeOpen(conn: Connection, open: OpenMessage): 'accept' | 'dump' {
    for (const other of this.conns) {
      if (other === conn || other.done) continue;
      // §6.8: "a connection collision with an existing BGP connection that is in the
      // Established state causes closing of the newly created connection."
      if (other.state === 'established') {
        this.events.collision?.({ rule: 'established', kept: other.direction, dropped: conn.direction });
        return 'dump';
      }
      // §6.8: collisions are detected against connections in OpenConfirm (where the
      // peer's identifier is known).
      if (other.state === 'openConfirm') {
        const winner = collisionWinner(
          { id: this.config.localBgpIdentifier, asn: this.config.localAsn },
          { id: open.bgpIdentifier, asn: openAsn(open) },
        );
        const keep: Direction = winner === 'local' ? 'outgoing' : 'incoming';
        const dropped = conn.direction === keep ? other.direction : conn.direction;
        this.events.collision?.({ rule: 'identifier', kept: keep, dropped });
        if (conn.direction === keep) {
          other.input({ type: 'openCollisionDump' }); // the loser alone gets Cease/7
          return 'accept';
        }
        return 'dump';
      }
    }
    return 'accept';
  }

  private stateChange(conn: Connection, _from: State, to: State, reason: TransitionReason): void {
    if (to === 'idle') {
      this.conns.delete(conn);
      if (conn === this.current) this.current = undefined;
      if (this.up && this.conns.size === 0) this.scheduleRestart(reason);
    }
    const now = this.state;
    if (now !== this.reported) {
      const from = this.reported;
      this.reported = now;
      this.events.stateChanged?.(from, now, reason);
    }
  }

  private scheduleRestart(reason: TransitionReason): void {
    if (this.config.passive) return; // a passive peer just waits to be called
    this.restartCancel?.();
    // §8.1.1 DampPeerOscillations: wait IdleHoldTime, doubled after each failure. A lost
    // collision is no failure of the peer's: the surviving connection is elsewhere.
    const wait = reason.kind === 'collision' ? 0 : this.idleHold;
    if (reason.kind !== 'collision') this.idleHold = Math.min(this.config.maxIdleHoldTime, this.idleHold * 2);
    const ms = Math.round(wait * 1000 * (0.75 + 0.25 * this.config.random()));
    this.restartCancel = this.deps.clock.setTimer(ms, () => {
      this.restartCancel = undefined;
      if (this.up && this.conns.size === 0) this.spawn('outgoing');
    });
  }
}
