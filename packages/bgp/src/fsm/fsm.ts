// The BGP finite state machine of RFC 4271 §8, for one transport connection, without
// I/O: `handle(input)` returns the commands to carry out (connect, send, arm a timer...).
// The driver in session/ owns the socket and the clock; collision detection between two
// connections to one peer (§6.8) is the peer's job, which feeds OpenCollisionDump here.
//
// Where this departs from the letter of §8.2.2, the comment says so and why.
// Past hazards of other speakers, kept in mind here:
// - the hold timer is restarted by every message received, not only KEEPALIVE and UPDATE
//   (GoBGP #2449);
// - a NOTIFICATION is never answered with another one;
// - RFC 6608 subcodes come from the state the message arrived in, never from an ordinal.

import type {
  BgpMessage,
  BgpNotification,
  Capability,
  NotificationMessage,
  OpenMessage,
  RouteRefreshMessage,
  UpdateMessage,
} from '../wire/index.js';
import { CeaseSubcode, ErrorCode, FsmSubcode, OpenSubcode } from '../wire/index.js';
import type { NegotiatedSession, NegotiationPolicy } from './negotiate.js';
import { negotiate, toNotification } from './negotiate.js';

export type State = 'idle' | 'connect' | 'active' | 'openSent' | 'openConfirm' | 'established';

/** RFC 4271 §8.1.2 timers, IdleHold of §8.1.1, and the RFC 9687 SendHoldTimer. */
export type TimerName = 'connectRetry' | 'hold' | 'keepalive' | 'delayOpen' | 'idleHold' | 'sendHold';

/** RFC 4271 §8.1 events, named; numbers in comments. */
export type FsmInput =
  | { readonly type: 'manualStart' } // 1
  | { readonly type: 'manualStartPassive' } // 4
  | { readonly type: 'automaticStart' } // 3 (5 when config.passive)
  /** 2: by default a Cease / Administrative Shutdown; pass an RFC 9003 one to say why. */
  | { readonly type: 'manualStop'; readonly notification?: NotificationMessage }
  /** 8: e.g. Cease / Maximum Number of Prefixes Reached. */
  | { readonly type: 'automaticStop'; readonly notification?: NotificationMessage }
  | { readonly type: 'timerExpired'; readonly timer: TimerName } // 9-13, RFC 9687
  | { readonly type: 'tcpConnectionConfirmed' } // 16 / 17
  | { readonly type: 'tcpConnectionFails'; readonly detail: string } // 18
  | { readonly type: 'message'; readonly message: BgpMessage } // 19, 24-27
  /** 21, 22, 28: a message the codec rejected with a session reset. */
  | { readonly type: 'messageError'; readonly error: BgpNotification }
  | { readonly type: 'openCollisionDump' } // 23
  /**
   * A message has arrived and waits its turn to be handled: the peer is alive, so the hold
   * timer restarts now (RFC 4271 §4.4), not when a backlog of UPDATEs reaches it.
   */
  | { readonly type: 'messageArrived' }
  /** RFC 9687: the transport stopped taking our bytes / took them again. */
  | { readonly type: 'sendStalled' }
  | { readonly type: 'sendResumed' };

/** Why the machine changed state: logged, and exposed as "last error". */
export type TransitionReason =
  | { readonly kind: 'start' }
  | { readonly kind: 'tcpConnected' }
  | { readonly kind: 'openReceived' }
  | { readonly kind: 'keepaliveReceived' }
  | { readonly kind: 'delayOpenExpired' }
  | { readonly kind: 'connectRetryExpired' }
  | { readonly kind: 'manualStop'; readonly notification: NotificationMessage }
  | { readonly kind: 'automaticStop'; readonly notification: NotificationMessage }
  | { readonly kind: 'holdTimerExpired' }
  | { readonly kind: 'sendHoldTimerExpired' }
  | { readonly kind: 'tcpFailed'; readonly detail: string }
  | { readonly kind: 'notificationReceived'; readonly notification: NotificationMessage }
  /** We sent this NOTIFICATION because of an error on our side of the wire. */
  | { readonly kind: 'errorSent'; readonly notification: NotificationMessage; readonly detail: string }
  | { readonly kind: 'collision' }
  /** An event with no meaning in this state (§8.2.2 "any other event"); nothing sent. */
  | { readonly kind: 'unexpectedEvent'; readonly detail: string };

export type FsmOutput =
  | { readonly type: 'connect' }
  | { readonly type: 'disconnect' }
  | { readonly type: 'send'; readonly message: BgpMessage }
  | { readonly type: 'armTimer'; readonly timer: TimerName; readonly ms: number }
  | { readonly type: 'cancelTimer'; readonly timer: TimerName }
  | {
      readonly type: 'stateChanged';
      readonly from: State;
      readonly to: State;
      readonly reason: TransitionReason;
    }
  | { readonly type: 'established'; readonly session: NegotiatedSession }
  | { readonly type: 'update'; readonly message: UpdateMessage }
  | { readonly type: 'routeRefresh'; readonly message: RouteRefreshMessage }
  /** Left Established: the routes learned on this session go (or turn stale, RFC 4724). */
  | { readonly type: 'sessionDown'; readonly reason: TransitionReason };

export interface FsmConfig extends NegotiationPolicy {
  /** Capabilities we advertise in our OPEN. */
  readonly capabilities: readonly Capability[];
  /** Never dial; wait for the peer (RFC 4271 §8.1.1 PassiveTcpEstablishment). */
  readonly passive: boolean;
  /** Seconds; RFC 4271 §10 suggests 120. */
  readonly connectRetryTime: number;
  /** Seconds to wait for the peer's OPEN before sending ours; 0 turns DelayOpen off. */
  readonly delayOpenTime: number;
  /** RFC 4271 §8.2.2: the "large value" the hold timer gets until OPEN; 4 minutes suggested. */
  readonly openHoldTime: number;
  /** RFC 9687 §4: seconds our bytes may stay unsent; 0 disables. Default max(480, 2 * hold). */
  readonly sendHoldTime?: number;
  /**
   * Restart automatically after an error, waiting IdleHoldTime (§8.1.1 DampPeerOscillations):
   * `initial` seconds, doubled after each failure up to `max`; undefined: stay Idle.
   */
  readonly idleHold?: { readonly initial: number; readonly max: number };
  /** A number in [0, 1); injected so jitter is reproducible in tests. */
  readonly random: () => number;
}

/** RFC 4271 §10: timers get a random 0.75..1.0 factor. */
function jitter(seconds: number, random: () => number): number {
  return Math.round(seconds * 1000 * (0.75 + 0.25 * random()));
}

export class SessionFsm {
  private st: State = 'idle';
  private localOpen: OpenMessage | undefined;
  private negotiated: NegotiatedSession | undefined;
  private delayOpenRunning = false;
  private connectRetryCounter = 0;
  private idleHoldSeconds: number;
  private out: FsmOutput[] = [];

  constructor(readonly config: FsmConfig) {
    this.idleHoldSeconds = config.idleHold?.initial ?? 0;
  }

  get state(): State {
    return this.st;
  }

  /** The agreed session, from OpenConfirm on. */
  get session(): NegotiatedSession | undefined {
    return this.negotiated;
  }

  /** The peer's BGP Identifier once its OPEN is in (collision detection needs it). */
  get remoteBgpIdentifier(): string | undefined {
    return this.negotiated?.peerBgpIdentifier;
  }

  get connectRetries(): number {
    return this.connectRetryCounter;
  }

  handle(input: FsmInput): FsmOutput[] {
    this.out = [];
    if (input.type === 'messageArrived') {
      if (this.st === 'established') this.restartHold();
      return this.out;
    }
    switch (this.st) {
      case 'idle':
        this.idle(input);
        break;
      case 'connect':
      case 'active':
        this.connectOrActive(input);
        break;
      case 'openSent':
        this.openSent(input);
        break;
      case 'openConfirm':
        this.openConfirm(input);
        break;
      case 'established':
        this.established(input);
        break;
    }
    return this.out;
  }

  // ---- helpers ----

  private emit(o: FsmOutput): void {
    this.out.push(o);
  }

  private to(next: State, reason: TransitionReason): void {
    const from = this.st;
    if (from === next) return;
    this.st = next;
    if (from === 'established') this.emit({ type: 'sessionDown', reason });
    this.emit({ type: 'stateChanged', from, to: next, reason });
  }

  private arm(timer: TimerName, ms: number): void {
    this.emit({ type: 'armTimer', timer, ms });
  }

  private cancel(timer: TimerName): void {
    this.emit({ type: 'cancelTimer', timer });
  }

  private armConnectRetry(): void {
    this.arm('connectRetry', jitter(this.config.connectRetryTime, this.config.random));
  }

  private openMessage(): OpenMessage {
    this.localOpen ??= {
      type: 'open',
      version: 4,
      myAutonomousSystem: this.config.localAsn > 0xffff ? 23456 : this.config.localAsn,
      holdTime: this.config.holdTime,
      bgpIdentifier: this.config.localBgpIdentifier,
      capabilities: this.config.capabilities,
    };
    return this.localOpen;
  }

  private sendOpen(): void {
    this.emit({ type: 'send', message: this.openMessage() });
    // RFC 4271 §8.2.2: "sets the HoldTimer to a large value" until the peer's OPEN.
    this.arm('hold', this.config.openHoldTime * 1000);
  }

  private armKeepalive(): void {
    const s = this.negotiated;
    if (s !== undefined && s.holdTime > 0) this.arm('keepalive', jitter(s.keepaliveTime, this.config.random));
  }

  private restartHold(): void {
    const s = this.negotiated;
    if (s !== undefined && s.holdTime > 0) this.arm('hold', s.holdTime * 1000);
  }

  /** Every way out to Idle: timers stopped, connection dropped, restart scheduled. */
  private toIdle(reason: TransitionReason, countFailure: boolean): void {
    for (const t of ['connectRetry', 'hold', 'keepalive', 'delayOpen', 'sendHold'] as const) this.cancel(t);
    this.delayOpenRunning = false;
    this.emit({ type: 'disconnect' });
    this.negotiated = undefined;
    if (countFailure) this.connectRetryCounter++;
    else this.connectRetryCounter = 0;
    this.to('idle', reason);
    const damp = this.config.idleHold;
    if (damp !== undefined && countFailure) {
      // §8.1.1 DampPeerOscillations: each failure doubles the wait, up to the maximum.
      this.arm('idleHold', jitter(this.idleHoldSeconds, this.config.random));
      this.idleHoldSeconds = Math.min(damp.max, this.idleHoldSeconds * 2);
    }
  }

  private sendAndIdle(n: NotificationMessage, detail: string): void {
    this.emit({ type: 'send', message: n });
    this.toIdle({ kind: 'errorSent', notification: n, detail }, true);
  }

  private fsmError(subcode: number, detail: string): void {
    this.sendAndIdle(
      { type: 'notification', code: ErrorCode.FiniteStateMachine, subcode, data: new Uint8Array(0) },
      detail,
    );
  }

  private stopNotification(
    input: { notification?: NotificationMessage },
    subcode: number,
  ): NotificationMessage {
    return (
      input.notification ?? { type: 'notification', code: ErrorCode.Cease, subcode, data: new Uint8Array(0) }
    );
  }

  /**
   * §8.2.2, OpenSent, OpenConfirm and Established alike: ManualStop sends Cease (the
   * operator's, or Administrative Shutdown), resets the ConnectRetryCounter and does not
   * restart; AutomaticStop sends its Cease and counts as a failure.
   */
  private stopWithNotification(i: {
    type: 'manualStop' | 'automaticStop';
    notification?: NotificationMessage;
  }): void {
    const manual = i.type === 'manualStop';
    const n = this.stopNotification(i, manual ? CeaseSubcode.AdministrativeShutdown : 0);
    this.emit({ type: 'send', message: n });
    if (manual) {
      this.cancel('idleHold');
      this.toIdle({ kind: 'manualStop', notification: n }, false);
    } else {
      this.toIdle({ kind: 'automaticStop', notification: n }, true);
    }
  }

  private start(passive: boolean): void {
    this.connectRetryCounter = 0;
    this.armConnectRetry();
    if (passive || this.config.passive) {
      this.to('active', { kind: 'start' });
    } else {
      this.emit({ type: 'connect' });
      this.to('connect', { kind: 'start' });
    }
  }

  // ---- Idle (§8.2.2) ----

  private idle(i: FsmInput): void {
    switch (i.type) {
      case 'manualStart':
        this.idleHoldSeconds = this.config.idleHold?.initial ?? 0;
        this.cancel('idleHold');
        this.start(false);
        return;
      case 'manualStartPassive':
        this.idleHoldSeconds = this.config.idleHold?.initial ?? 0;
        this.cancel('idleHold');
        this.start(true);
        return;
      case 'automaticStart':
        this.start(false);
        return;
      case 'timerExpired':
        // §8.1.2 event 13: IdleHoldTimer_Expires leads to AutomaticStart.
        if (i.timer === 'idleHold') this.start(false);
        return;
      case 'manualStop':
        // "The ManualStop event ... in the Idle state ... ignored", but it also ends a
        // pending automatic restart: an operator who stops a peer means it.
        this.cancel('idleHold');
        this.idleHoldSeconds = this.config.idleHold?.initial ?? 0;
        return;
      case 'tcpConnectionConfirmed':
        // "any other event ... the local system ... ignores it" (connections in Idle are refused).
        this.emit({ type: 'disconnect' });
        return;
      default:
        return;
    }
  }

  // ---- Connect and Active (§8.2.2) ----

  private connectOrActive(i: FsmInput): void {
    const active = this.st === 'active';
    switch (i.type) {
      case 'manualStart':
      case 'manualStartPassive':
      case 'automaticStart':
        return; // ignored
      case 'manualStop':
        this.cancel('idleHold');
        this.toIdle(
          { kind: 'manualStop', notification: this.stopNotification(i, CeaseSubcode.AdministrativeShutdown) },
          false,
        );
        return;
      case 'timerExpired':
        switch (i.timer) {
          case 'connectRetry':
            // Connect: drop the attempt and dial again; Active: dial (-> Connect).
            if (!active) this.emit({ type: 'disconnect' });
            this.armConnectRetry();
            this.cancel('delayOpen');
            this.delayOpenRunning = false;
            if (this.config.passive) {
              // A passive peer never dials: keep waiting in Active.
              if (!active) this.to('active', { kind: 'connectRetryExpired' });
              return;
            }
            this.emit({ type: 'connect' });
            this.to('connect', { kind: 'connectRetryExpired' });
            return;
          case 'delayOpen':
            this.delayOpenRunning = false;
            this.sendOpen();
            this.to('openSent', { kind: 'delayOpenExpired' });
            return;
          default:
            this.toIdle({ kind: 'unexpectedEvent', detail: `${i.timer} timer in ${this.st}` }, true);
            return;
        }
      case 'tcpConnectionConfirmed':
        this.cancel('connectRetry');
        if (this.config.delayOpenTime > 0) {
          this.delayOpenRunning = true;
          this.arm('delayOpen', this.config.delayOpenTime * 1000);
          return;
        }
        this.sendOpen();
        this.to('openSent', { kind: 'tcpConnected' });
        return;
      case 'tcpConnectionFails':
        // §8.2.2: with DelayOpen running (or in Active) the machine restarts ConnectRetry
        // and goes on listening in Active. Without DelayOpen, Connect goes to Idle; we go to
        // Active too and dial again when ConnectRetry expires (as BIRD and FRR do): the peer
        // can still reach us meanwhile and the retry keeps its jitter. The counter counts.
        this.cancel('delayOpen');
        this.delayOpenRunning = false;
        this.emit({ type: 'disconnect' });
        this.armConnectRetry();
        this.connectRetryCounter++;
        this.to('active', { kind: 'tcpFailed', detail: i.detail });
        return;
      case 'message':
        if (i.message.type === 'open' && this.delayOpenRunning) {
          // Event 20: BGPOpen with the DelayOpenTimer running.
          this.cancel('connectRetry');
          this.cancel('delayOpen');
          this.delayOpenRunning = false;
          this.emit({ type: 'send', message: this.openMessage() });
          this.acceptOpen(i.message);
          return;
        }
        if (i.message.type === 'notification') {
          this.toIdle({ kind: 'notificationReceived', notification: i.message }, !isVersionError(i.message));
          return;
        }
        this.toIdle(
          { kind: 'unexpectedEvent', detail: `${i.message.type} before the connection's OPEN` },
          true,
        );
        return;
      case 'messageError':
        // §8.2.2: send the NOTIFICATION (SendNOTIFICATIONwithoutOPEN) and go to Idle.
        this.sendAndIdle(toNotification(i.error), i.error.reason);
        return;
      case 'automaticStop':
        // No OPEN has been exchanged on this connection, so nothing is sent.
        this.toIdle({ kind: 'automaticStop', notification: this.stopNotification(i, 0) }, true);
        return;
      case 'openCollisionDump':
        this.toIdle({ kind: 'collision' }, true);
        return;
      case 'sendStalled':
      case 'sendResumed':
      case 'messageArrived':
        return;
    }
  }

  // ---- OpenSent ----

  private openSent(i: FsmInput): void {
    switch (i.type) {
      case 'manualStart':
      case 'manualStartPassive':
      case 'automaticStart':
        return;
      case 'manualStop':
      case 'automaticStop':
        this.stopWithNotification(i);
        return;
      case 'timerExpired':
        if (i.timer === 'hold') {
          this.sendAndIdle(holdExpired(), 'hold timer expired in OpenSent');
          return;
        }
        if (i.timer === 'sendHold') {
          this.sendHoldExpired();
          return;
        }
        this.fsmError(0, `${i.timer} timer in OpenSent`);
        return;
      case 'tcpConnectionConfirmed':
        return; // a second connection: the peer tracks it (§6.8)
      case 'tcpConnectionFails':
        // "closes the BGP connection, restarts the ConnectRetryTimer, continues to listen
        // ... and changes its state to Active."
        this.emit({ type: 'disconnect' });
        this.cancel('hold');
        this.armConnectRetry();
        this.to('active', { kind: 'tcpFailed', detail: i.detail });
        return;
      case 'message': {
        const m = i.message;
        if (m.type === 'open') {
          this.cancel('connectRetry');
          this.acceptOpen(m);
          return;
        }
        if (m.type === 'notification') {
          // §8.2.2 lists NotifMsg among the events answered with an FSM Error; answering a
          // NOTIFICATION with another is pointless (the peer is closing), so we only close.
          this.toIdle({ kind: 'notificationReceived', notification: m }, !isVersionError(m));
          return;
        }
        this.fsmError(FsmSubcode.UnexpectedMessageInOpenSent, `${m.type} before OPEN`);
        return;
      }
      case 'messageError':
        this.sendAndIdle(toNotification(i.error), i.error.reason);
        return;
      case 'openCollisionDump': {
        const n = cease(CeaseSubcode.ConnectionCollisionResolution);
        this.emit({ type: 'send', message: n });
        this.toIdle({ kind: 'collision' }, true);
        return;
      }
      case 'sendStalled':
        this.armSendHold();
        return;
      case 'sendResumed':
        this.cancel('sendHold');
        return;
      case 'messageArrived':
        return;
    }
  }

  /** A valid OPEN arrived: negotiate, then KEEPALIVE and OpenConfirm, or the error. */
  private acceptOpen(open: OpenMessage): void {
    const agreed = negotiate(this.openMessage(), open, this.config);
    if (!('peerAsn' in agreed)) {
      this.sendAndIdle(toNotification(agreed), agreed.reason);
      return;
    }
    this.negotiated = agreed;
    this.emit({ type: 'send', message: { type: 'keepalive' } });
    if (agreed.holdTime > 0) {
      this.armKeepalive();
      this.arm('hold', agreed.holdTime * 1000);
    } else {
      this.cancel('keepalive');
      this.cancel('hold');
    }
    this.to('openConfirm', { kind: 'openReceived' });
  }

  private armSendHold(): void {
    // RFC 9687 §4: "the SendHoldTime ... a value of 8 minutes or twice the HoldTime,
    // whichever is greater" unless configured; 0 disables.
    const hold = this.negotiated?.holdTime ?? this.config.holdTime;
    const s = this.config.sendHoldTime ?? Math.max(480, 2 * hold);
    if (s > 0) this.arm('sendHold', s * 1000);
  }

  private sendHoldExpired(): void {
    // RFC 9687 §4: send the NOTIFICATION if it can go (it likely cannot) and close.
    const n: NotificationMessage = {
      type: 'notification',
      code: ErrorCode.SendHoldTimerExpired,
      subcode: 0,
      data: new Uint8Array(0),
    };
    this.emit({ type: 'send', message: n });
    this.toIdle({ kind: 'sendHoldTimerExpired' }, true);
  }

  /** The timers of OpenConfirm and Established, which both keep the session alive. */
  private sessionTimer(timer: TimerName, where: string, holdDetail: string): void {
    switch (timer) {
      case 'hold':
        this.sendAndIdle(holdExpired(), holdDetail);
        return;
      case 'keepalive':
        this.emit({ type: 'send', message: { type: 'keepalive' } });
        this.armKeepalive();
        return;
      case 'sendHold':
        this.sendHoldExpired();
        return;
      default:
        this.fsmError(0, `${timer} timer in ${where}`);
        return;
    }
  }

  // ---- OpenConfirm ----

  private openConfirm(i: FsmInput): void {
    switch (i.type) {
      case 'manualStart':
      case 'manualStartPassive':
      case 'automaticStart':
        return;
      case 'manualStop':
      case 'automaticStop':
        this.stopWithNotification(i);
        return;
      case 'timerExpired':
        this.sessionTimer(i.timer, 'OpenConfirm', 'hold timer expired in OpenConfirm');
        return;
      case 'tcpConnectionConfirmed':
        return; // a second connection: tracked by the peer (§6.8)
      case 'tcpConnectionFails':
        this.toIdle({ kind: 'tcpFailed', detail: i.detail }, true);
        return;
      case 'message': {
        const m = i.message;
        if (m.type === 'keepalive') {
          this.restartHold();
          this.to('established', { kind: 'keepaliveReceived' });
          this.emit({ type: 'established', session: this.negotiated! });
          return;
        }
        if (m.type === 'notification') {
          this.toIdle({ kind: 'notificationReceived', notification: m }, !isVersionError(m));
          return;
        }
        this.fsmError(FsmSubcode.UnexpectedMessageInOpenConfirm, `${m.type} in OpenConfirm`);
        return;
      }
      case 'messageError':
        this.sendAndIdle(toNotification(i.error), i.error.reason);
        return;
      case 'openCollisionDump': {
        this.emit({ type: 'send', message: cease(CeaseSubcode.ConnectionCollisionResolution) });
        this.toIdle({ kind: 'collision' }, true);
        return;
      }
      case 'sendStalled':
        this.armSendHold();
        return;
      case 'sendResumed':
        this.cancel('sendHold');
        return;
      case 'messageArrived':
        return;
    }
  }

  // ---- Established ----

  private established(i: FsmInput): void {
    switch (i.type) {
      case 'manualStart':
      case 'manualStartPassive':
      case 'automaticStart':
        return;
      case 'manualStop':
      case 'automaticStop':
        this.stopWithNotification(i);
        return;
      case 'timerExpired':
        this.sessionTimer(i.timer, 'Established', 'hold timer expired');
        return;
      case 'tcpConnectionConfirmed':
        return; // §6.8: the Established session wins; the peer closes the newcomer
      case 'tcpConnectionFails':
        this.toIdle({ kind: 'tcpFailed', detail: i.detail }, true);
        return;
      case 'message': {
        const m = i.message;
        // Any message shows the peer alive (RFC 4271 §4.4 names KEEPALIVE and UPDATE;
        // a ROUTE-REFRESH is no less proof).
        switch (m.type) {
          case 'keepalive':
            this.restartHold();
            return;
          case 'update':
            this.restartHold();
            this.emit({ type: 'update', message: m });
            return;
          case 'routeRefresh':
            this.restartHold();
            this.emit({ type: 'routeRefresh', message: m });
            return;
          case 'notification':
            this.toIdle({ kind: 'notificationReceived', notification: m }, !isVersionError(m));
            return;
          case 'open':
            this.fsmError(FsmSubcode.UnexpectedMessageInEstablished, 'OPEN in Established');
            return;
        }
        return;
      }
      case 'messageError':
        this.sendAndIdle(toNotification(i.error), i.error.reason);
        return;
      case 'openCollisionDump':
        // §6.8: "a connection collision with an existing BGP connection that is in the
        // Established state causes closing of the newly created connection": never this one.
        return;
      case 'sendStalled':
        this.armSendHold();
        return;
      case 'sendResumed':
        this.cancel('sendHold');
        return;
      case 'messageArrived':
        return;
    }
  }
}

function cease(subcode: number): NotificationMessage {
  return { type: 'notification', code: ErrorCode.Cease, subcode, data: new Uint8Array(0) };
}

function holdExpired(): NotificationMessage {
  return { type: 'notification', code: ErrorCode.HoldTimerExpired, subcode: 0, data: new Uint8Array(0) };
}

/** §8.1.2 event 24, NotifMsgVerErr: the peer rejected our version; not a failure to damp. */
function isVersionError(n: NotificationMessage): boolean {
  return n.code === ErrorCode.OpenMessage && n.subcode === OpenSubcode.UnsupportedVersionNumber;
}
