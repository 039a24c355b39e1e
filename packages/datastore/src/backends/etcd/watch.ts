// One Backend watch on one etcd watch stream. It remembers the last revision it delivered
// and, whenever the stream breaks, opens a new one from the revision after it, so the
// consumer sees each change once. A start revision etcd has compacted away becomes a resync
// (a fresh range read) and the watch goes on from that read's revision.
import type { Etcd3, IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from 'etcd3';
import type { Kind } from '../../resources/kinds.js';
import type { AnyResource, ListResult, WatchEvent, WatchOptions } from '../../store/backend.js';
import { DatastoreError, UnavailableError } from '../../store/errors.js';
import { EventQueue } from '../../store/event-queue.js';
import { decode, tombstone } from './codec.js';
import type { KeyLayout } from './keys.js';

export interface WatchContext {
  readonly client: Etcd3;
  readonly layout: KeyLayout;
  /** The endpoints, for messages. */
  readonly where: string;
  /** How long a new stream may take to be created before it counts as failed. */
  readonly dialTimeoutMs: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  list(kind: Kind, namespace: string | undefined): Promise<ListResult>;
}

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

export class EtcdWatch {
  readonly queue: EventQueue<AnyResource>;
  /** The last revision delivered (or resynced to); undefined until the first resync. */
  private last: number | undefined;
  private stream: Stream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly ctx: WatchContext,
    private readonly kind: Kind,
    private readonly opts: WatchOptions,
    onClose: () => void,
  ) {
    this.queue = new EventQueue<AnyResource>(() => {
      this.stop();
      onClose();
    });
    // Validates the namespace now: a bad one throws from watch() instead of looping on errors.
    ctx.layout.range(kind, opts.namespace);
    const from = opts.revision === undefined ? NaN : Number(opts.revision);
    if (Number.isSafeInteger(from) && from >= 0 && /^\d+$/.test(opts.revision ?? '')) {
      this.last = from;
      this.connect();
    } else void this.resync();
  }

  private get closed(): boolean {
    return this.queue.isClosed;
  }

  private push(ev: WatchEvent): void {
    this.queue.push(ev);
  }

  private async resync(): Promise<void> {
    let l: ListResult;
    try {
      l = await this.ctx.list(this.kind, this.opts.namespace);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (this.closed) return;
    this.last = Number(l.revision);
    this.push({ type: 'resync', items: l.items, revision: l.revision });
    this.connect();
  }

  private connect(): void {
    this.ctx.client.watchClient.watch().then(
      (stream) => this.attach(stream),
      (e: unknown) => this.fail(e),
    );
  }

  private attach(stream: Stream): void {
    if (this.closed) return shut(stream);
    this.stream = stream;
    const range = this.ctx.layout.range(this.kind, this.opts.namespace);
    // A stream that etcd never confirms (a silent network) is a failure too.
    this.timer = setTimeout(
      () => this.lost(stream, new Error(`watch not created within ${this.ctx.dialTimeoutMs} ms`)),
      this.ctx.dialTimeoutMs,
    );
    stream.on('data', (res) => this.onResponse(stream, res));
    stream.on('error', (e) => this.lost(stream, e));
    stream.on('end', () => this.lost(stream, new Error('watch stream ended')));
    stream.write({
      create_request: {
        key: range.start,
        range_end: range.end,
        start_revision: String(this.last! + 1),
        prev_kv: true,
        progress_notify: true,
      },
    });
  }

  private onResponse(stream: Stream, res: IWatchResponse): void {
    if (stream !== this.stream || this.closed) return;
    if (res.created) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (res.canceled) {
      this.stream = undefined;
      shut(stream);
      if (Number(res.compact_revision) > 0) void this.resync();
      else this.fail(new Error(`watch canceled by etcd: ${res.cancel_reason}`));
      return;
    }
    if (res.created) {
      this.failures = 0;
      // etcd is behind what this watch has seen (restored from a backup, or another
      // cluster): the history it replays is not ours, so start over from a fresh read.
      if (Number(res.header.revision) < this.last!) {
        this.stream = undefined;
        shut(stream);
        void this.resync();
      }
      return;
    }
    const from = this.last!;
    if (res.events.length === 0) {
      // A progress notification: every later event has a higher revision.
      const rev = Number(res.header.revision);
      if (rev > from) {
        this.last = rev;
        this.push({ type: 'bookmark', revision: res.header.revision });
      }
      return;
    }
    let last = from;
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev <= from) continue;
      last = Math.max(last, rev);
      const out = this.translate(ev);
      if (out !== undefined) this.push(out);
    }
    this.last = last;
  }

  private translate(ev: IEvent): WatchEvent | undefined {
    const key = this.ctx.layout.parse(this.kind, ev.kv.key);
    const revision = ev.kv.mod_revision;
    try {
      if (key === undefined) throw new Error(`etcd key ${ev.kv.key.toString()} is not a ${this.kind} key`);
      if (ev.type === 'Put')
        return {
          type: ev.kv.version === '1' ? 'added' : 'modified',
          object: decode(key, ev.kv.value, revision),
          revision,
        };
      const prev = ev.prev_kv as IEvent['prev_kv'] | null | undefined;
      const object = prev == null ? tombstone(key, revision) : decode(key, prev.value, revision);
      return { type: 'deleted', object, revision };
    } catch (e) {
      // An object we cannot read is reported and skipped; the watch goes on.
      this.push({ type: 'error', error: e instanceof Error ? e : new Error(String(e)) });
      return undefined;
    }
  }

  private lost(stream: Stream, e: unknown): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    shut(stream);
    this.fail(e);
  }

  /** Reports the failure and tries again after a capped exponential backoff with jitter. */
  private fail(e: unknown): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const error =
      e instanceof DatastoreError
        ? e
        : new UnavailableError(`etcd ${this.ctx.where}: watch ${this.kind}: ${message(e)}`, { cause: e });
    this.push({ type: 'error', error });
    const { initialMs, maxMs } = this.ctx.backoff;
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.closed) return;
        if (this.last === undefined) void this.resync();
        else this.connect();
      },
      cap / 2 + (Math.random() * cap) / 2,
    );
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.stream;
    this.stream = undefined;
    if (s !== undefined) shut(s);
  }
}

/**
 * Ends a stream. end() first: etcd3 treats an error on a still-writable stream as a failed
 * host and resets every channel to it, which the cancellation's own error would trigger.
 */
function shut(stream: Stream): void {
  stream.end();
  stream.cancel();
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
