// The driver: one SessionFsm over one transport at a time, carrying out the machine's
// commands (dial, send, timers, close) and feeding it what the wire and the clock say.
// The only place in bgp-ts that touches a socket or a timer for a session.

import type {
  FsmConfig,
  FsmInput,
  FsmOutput,
  NegotiatedSession,
  State,
  TimerName,
  TransitionReason,
} from '../fsm/index.js';
import { SessionFsm } from '../fsm/index.js';
import type { BgpMessage, OpenMessage, RouteRefreshMessage, UpdateMessage } from '../wire/index.js';
import {
  BgpNotification,
  DEFAULT_CONTEXT,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MessageFramer,
  decodeFrame,
  encodeMessage,
} from '../wire/index.js';
import type { Clock } from './clock.js';

/** A message's kind, as `BgpMessage['type']` names it. */
export type MessageKind = BgpMessage['type'];
const KIND_BY_TYPE: readonly (MessageKind | undefined)[] = [
  undefined,
  'open',
  'update',
  'notification',
  'keepalive',
  'routeRefresh',
];
import type { Transport } from './transport.js';

export type Direction = 'outgoing' | 'incoming';

/** Queued messages past which a connection stops reading until it catches up. */
const MAX_BACKLOG = 2000;

/** Longest stretch of received-message handling per event-loop turn, all connections together. */
const RECEIVE_BUDGET_MS = 8;

let turnStart = -1;

/**
 * Whether this event-loop turn has used up its budget for routing work (received messages
 * and UPDATE building): past it, work yields so timers and other peers get their turn.
 */
export function overBudget(): boolean {
  const now = performance.now();
  if (turnStart < 0) {
    turnStart = now;
    // The next turn starts afresh.
    setImmediate(() => (turnStart = -1));
    return false;
  }
  return now - turnStart > RECEIVE_BUDGET_MS;
}

/** How long a closing transport may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export interface ConnectionHooks {
  /**
   * Called with each OPEN before the machine sees it; 'dump' makes this connection the
   * loser of a collision (RFC 4271 §6.8).
   */
  beforeOpen?(conn: Connection, open: OpenMessage): 'accept' | 'dump';
  onStateChange?(conn: Connection, from: State, to: State, reason: TransitionReason): void;
  onEstablished?(conn: Connection, session: NegotiatedSession): void;
  onUpdate?(conn: Connection, update: UpdateMessage): void;
  onRouteRefresh?(conn: Connection, message: RouteRefreshMessage): void;
  onSessionDown?(conn: Connection, reason: TransitionReason): void;
  /**
   * Every message in and out, for counters: its kind and size, and the decoded message where
   * there is one (received, or sent by the FSM; not the pre-encoded UPDATEs and refreshes).
   */
  onMessage?(
    conn: Connection,
    direction: 'in' | 'out',
    type: MessageKind,
    bytes: number,
    message?: BgpMessage,
  ): void;
  /** The transport can take more bytes again (drive UPDATE generation from this). */
  onWritable?(conn: Connection): void;
}

export interface ConnectionDeps {
  readonly clock: Clock;
  /** Opens a transport to the peer; rejects when it cannot. */
  readonly dial?: () => Promise<Transport>;
  readonly hooks: ConnectionHooks;
}

export class Connection {
  readonly fsm: SessionFsm;
  private transport: Transport | undefined;
  private framer = new MessageFramer();
  private timers = new Map<TimerName, () => void>();
  private dialGeneration = 0;
  private stalled = false;
  /** Set once the machine returns to Idle: a Connection is not reused after that. */
  private finished = false;

  constructor(
    config: FsmConfig,
    readonly direction: Direction,
    private readonly deps: ConnectionDeps,
  ) {
    this.fsm = new SessionFsm(config);
  }

  get state(): State {
    return this.fsm.state;
  }

  get done(): boolean {
    return this.finished;
  }

  get remoteAddress(): string | undefined {
    return this.transport?.remoteAddress;
  }

  /** Our address on the connection (the socket's). */
  get localAddress(): string | undefined {
    return this.transport?.localAddress;
  }

  /** Holds writes until the returned function is called (see Transport.cork). */
  cork(): () => void {
    const t = this.transport;
    if (t === undefined) return () => {};
    t.cork();
    return () => t.uncork();
  }

  /** True while the transport takes more bytes without passing its high-water mark. */
  get writable(): boolean {
    return this.transport !== undefined && !this.stalled;
  }

  /** Dial and run (outgoing), or wait in Active (passive). */
  start(passive = false): void {
    this.input({ type: passive ? 'manualStartPassive' : 'manualStart' });
  }

  /** Run on a transport the peer accepted from the listener. */
  startIncoming(t: Transport): void {
    this.input({ type: 'manualStartPassive' });
    this.attach(t);
    this.input({ type: 'tcpConnectionConfirmed' });
  }

  input(i: FsmInput): void {
    if (this.finished) return;
    for (const o of this.fsm.handle(i)) this.run(o);
  }

  /** Drops the transport without a word: the machine sees the connection fail. */
  abort(): void {
    const t = this.transport;
    if (t === undefined) {
      this.input({ type: 'manualStop' });
      return;
    }
    this.transport = undefined;
    this.dialGeneration++;
    t.destroy();
    this.input({ type: 'tcpConnectionFails', detail: 'closed without NOTIFICATION (graceful restart)' });
  }

  /** Sends an encoded UPDATE (or any message) in Established; false means wait for onWritable. */
  sendRaw(bytes: Uint8Array): boolean {
    if (this.transport === undefined || this.fsm.state !== 'established') return false;
    // Type octet of the header (RFC 4271 §4.1); the encoders only hand over whole messages.
    const kind = KIND_BY_TYPE[bytes[18] ?? 0];
    if (kind !== undefined) this.deps.hooks.onMessage?.(this, 'out', kind, bytes.length);
    const ok = this.transport.write(bytes);
    if (!ok) this.markStalled();
    return ok;
  }

  private markStalled(): void {
    if (this.stalled) return;
    this.stalled = true;
    this.input({ type: 'sendStalled' });
  }

  private attach(t: Transport): void {
    this.transport = t;
    this.framer = new MessageFramer();
    this.stalled = false;
    t.onData((chunk) => {
      if (this.transport !== t) return;
      try {
        // Frames are views of the chunk: they stay valid while queued (the chunk is ours).
        // KEEPALIVEs are handled at once, and any arrival restarts the hold timer: the peer's
        // liveness must not wait behind a backlog of UPDATEs.
        let arrived = false;
        this.framer.push(chunk, (type, frame) => {
          arrived = true;
          if (type === 4 && this.inboxHead === this.inbox.length) this.receive(frame);
          else this.inbox.push(frame);
        });
        if (arrived) this.input({ type: 'messageArrived' });
      } catch (e) {
        if (!(e instanceof BgpNotification)) throw e;
        this.input({ type: 'messageError', error: e });
        return;
      }
      this.drainInbox(t);
    });
    t.onDrain(() => {
      if (this.transport !== t) return;
      if (this.stalled) {
        this.stalled = false;
        this.input({ type: 'sendResumed' });
      }
      this.deps.hooks.onWritable?.(this);
    });
    t.onClose((e) => {
      if (this.transport !== t) return;
      this.transport = undefined;
      this.input({ type: 'tcpConnectionFails', detail: e?.message ?? 'connection closed by peer' });
    });
  }

  private inbox: Uint8Array[] = [];
  private inboxHead = 0;
  private draining = false;

  /**
   * Handles queued messages while the turn's budget (RECEIVE_BUDGET_MS, shared by all
   * connections) lasts, then pauses the socket and yields, so timers (keepalives) never
   * wait behind a burst of UPDATEs.
   */
  private drainInbox(t: Transport): void {
    if (this.draining) return;
    while (this.inboxHead < this.inbox.length && this.transport === t) {
      if (overBudget()) {
        // Out of time for this turn: let timers and other peers run, then go on. Reading
        // stops only when the backlog is large (TCP then holds the rest and the peer slows).
        this.draining = true;
        if (this.inbox.length - this.inboxHead > MAX_BACKLOG) t.pause();
        setImmediate(() => {
          this.draining = false;
          this.drainInbox(t);
        });
        return;
      }
      this.receive(this.inbox[this.inboxHead++]!);
    }
    this.inbox = [];
    this.inboxHead = 0;
    if (this.transport === t) t.resume();
  }

  private receive(frame: Uint8Array): void {
    // Decode with what the session agreed once it has (4-octet AS, ADD-PATH, ...).
    const ctx = this.fsm.session?.receiveContext ?? DEFAULT_CONTEXT;
    let m: BgpMessage;
    try {
      m = decodeFrame(frame, ctx);
    } catch (e) {
      if (!(e instanceof BgpNotification)) throw e;
      this.input({ type: 'messageError', error: e });
      return;
    }
    this.deps.hooks.onMessage?.(this, 'in', m.type, frame.length, m);
    if (m.type === 'open' && this.deps.hooks.beforeOpen?.(this, m) === 'dump') {
      this.input({ type: 'openCollisionDump' });
      return;
    }
    this.input({ type: 'message', message: m });
  }

  private run(o: FsmOutput): void {
    const h = this.deps.hooks;
    switch (o.type) {
      case 'connect':
        this.dial();
        return;
      case 'disconnect': {
        const t = this.transport;
        this.transport = undefined;
        this.dialGeneration++; // a dial still in flight is abandoned
        if (t !== undefined) {
          // Let a NOTIFICATION just written go out, but do not wait on a silent peer.
          t.end();
          this.deps.clock.setTimer(CLOSE_GRACE_MS, () => t.destroy());
        }
        return;
      }
      case 'send': {
        const t = this.transport;
        if (t === undefined) return;
        const ctx = this.fsm.session?.sendContext ?? DEFAULT_CONTEXT;
        const bytes = encodeMessage(o.message, ctx);
        h.onMessage?.(this, 'out', o.message.type, bytes.length, o.message);
        if (!t.write(bytes)) this.markStalled();
        return;
      }
      case 'armTimer': {
        this.timers.get(o.timer)?.();
        this.timers.set(
          o.timer,
          this.deps.clock.setTimer(o.ms, () => {
            this.timers.delete(o.timer);
            this.input({ type: 'timerExpired', timer: o.timer });
          }),
        );
        return;
      }
      case 'cancelTimer':
        this.timers.get(o.timer)?.();
        this.timers.delete(o.timer);
        return;
      case 'stateChanged':
        if (o.to === 'idle') {
          // A Connection lives for one run of the machine; the peer starts a new one.
          this.finished = true;
          for (const cancel of this.timers.values()) cancel();
          this.timers.clear();
        }
        h.onStateChange?.(this, o.from, o.to, o.reason);
        return;
      case 'established':
        // RFC 8654: larger messages only once both sides said so.
        if (o.session.extendedMessage) this.framer.setMaxLength(MAX_EXTENDED_MESSAGE_LENGTH);
        h.onEstablished?.(this, o.session);
        return;
      case 'update':
        h.onUpdate?.(this, o.message);
        return;
      case 'routeRefresh':
        h.onRouteRefresh?.(this, o.message);
        return;
      case 'sessionDown':
        h.onSessionDown?.(this, o.reason);
        return;
    }
  }

  private dial(): void {
    const dial = this.deps.dial;
    if (dial === undefined) {
      queueMicrotask(() => this.input({ type: 'tcpConnectionFails', detail: 'no way to dial this peer' }));
      return;
    }
    const gen = ++this.dialGeneration;
    dial().then(
      (t) => {
        if (gen !== this.dialGeneration || this.finished || this.fsm.state !== 'connect') {
          t.destroy(); // the attempt was abandoned meanwhile
          return;
        }
        this.attach(t);
        this.input({ type: 'tcpConnectionConfirmed' });
      },
      (e: unknown) => {
        if (gen !== this.dialGeneration) return;
        this.input({ type: 'tcpConnectionFails', detail: e instanceof Error ? e.message : String(e) });
      },
    );
  }
}
