// One watch on the Kubernetes API, kept alive across the API server's routine closes,
// network failures and "410 Gone" (history compacted), as the Backend contract asks:
// - without a revision (or after a 410): list, emit `resync`, watch from the list's resourceVersion;
// - a stream that ends (the server ends every watch after timeoutSeconds): reopen from the
//   last resourceVersion delivered (an object's, or a BOOKMARK's), so nothing is lost or repeated;
// - any failure: an `error` event, capped exponential backoff with jitter, then the same.
// See https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
//
// The loop is generic over what an object becomes (`toResource`), so the node daemon watches
// built-in kinds (Secrets, Services, EndpointSlices, Nodes) with the same code.
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { AnyResource, ListResult, Watch, WatchEvent } from '../../store/backend.js';
import { DatastoreError, UnavailableError } from '../../store/errors.js';
import { EventQueue } from '../../store/event-queue.js';
import { Backoff, sleep } from './backoff.js';
import { readBody } from './request.js';
import { asStatus } from './status.js';

/** What the watch loop needs of an object: its resourceVersion, to resume after it. */
export interface Versioned {
  readonly metadata: { readonly resourceVersion?: string };
}

export interface WatchTransport<R extends Versioned = AnyResource> {
  /** One list attempt (the watch loop does its own retrying, reported as events). */
  list(): Promise<ListResult<R>>;
  open(rv: string, timeoutSeconds: number, signal: AbortSignal): Promise<IncomingMessage>;
  /** An object from a watch event; throwing ends that stream (an `error` event, then a retry). */
  toResource(raw: unknown): R;
  /** The error for an HTTP error response or an ERROR event that is not a 410 (Status body, or text). */
  failure(code: number, body: unknown): Error;
}

export interface WatchTiming {
  readonly revision?: string;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly watchTimeoutSeconds: number;
  readonly watchGraceMs: number;
}

interface StreamEnd {
  /** The server said 410: the revision is gone, list again. */
  readonly expired: boolean;
  /** Events (bookmarks included) read from this stream. */
  readonly delivered: number;
}

/** A stream that ended this soon with nothing on it is not a normal timeout: back off. */
const EMPTY_STREAM_MS = 1000;

export class KubernetesWatch<R extends Versioned = AnyResource> implements Watch<R> {
  private readonly q: EventQueue<R>;
  private readonly stop = new AbortController();
  /**
   * The last resourceVersion delivered (an event's or a bookmark's), kept as each event is
   * pushed so a stream that fails half-way resumes after what it delivered; undefined: list first.
   */
  private rv: string | undefined;

  constructor(
    private readonly t: WatchTransport<R>,
    /** Names the watch in messages (a kind, or `secrets kube-system/bgp-password`). */
    private readonly label: string,
    private readonly timing: WatchTiming,
    onClose: () => void,
  ) {
    this.q = new EventQueue<R>(() => {
      this.stop.abort();
      onClose();
    });
    void this.run(timing.revision);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent<R>> {
    return this.q[Symbol.asyncIterator]();
  }

  close(): void {
    this.q.close();
  }

  private get closed(): boolean {
    return this.stop.signal.aborted;
  }

  private async run(start: string | undefined): Promise<void> {
    this.rv = start === '' ? undefined : start;
    const backoff = new Backoff(this.timing.backoffInitialMs, this.timing.backoffMaxMs);
    while (!this.closed) {
      try {
        if (this.rv === undefined) {
          const l = await this.t.list();
          if (this.closed) return;
          this.q.push({ type: 'resync', items: l.items, revision: l.revision });
          this.rv = l.revision;
        }
        const began = Date.now();
        const end = await this.stream(this.rv);
        if (this.closed) return;
        if (end.expired) this.rv = undefined;
        if (end.delivered > 0 || end.expired) backoff.reset();
        else if (Date.now() - began < EMPTY_STREAM_MS) await sleep(backoff.next(), this.stop.signal);
      } catch (e) {
        if (this.closed) return;
        this.q.push({ type: 'error', error: this.asError(e) });
        await sleep(backoff.next(), this.stop.signal);
      }
    }
  }

  /**
   * Typed errors (the datastore's, or a transport's own error classes) pass as they are;
   * anything else, a socket's (reset, refused, aborted) or a plain Error, becomes Unavailable
   * naming the watch.
   */
  private asError(e: unknown): Error {
    if (e instanceof DatastoreError) return e;
    const typed =
      e instanceof Error &&
      e.name !== 'Error' &&
      e.name !== 'AbortError' &&
      e.name !== 'TimeoutError' &&
      typeof (e as { code?: unknown }).code !== 'string';
    if (typed) return e;
    const msg = e instanceof Error ? e.message : String(e);
    return new UnavailableError(
      `watch ${this.label}: the connection to the Kubernetes API server failed: ${msg}`,
      {
        cause: e,
      },
    );
  }

  private async stream(from: string): Promise<StreamEnd> {
    const { watchTimeoutSeconds: t, watchGraceMs } = this.timing;
    const timeoutSeconds = t + Math.floor(Math.random() * t);
    const ctl = new AbortController();
    const signal = AbortSignal.any([ctl.signal, this.stop.signal]);
    const stalled = setTimeout(
      () =>
        ctl.abort(new UnavailableError(`watch ${this.label} stalled past its ${timeoutSeconds} s timeout`)),
      timeoutSeconds * 1000 + watchGraceMs,
    );
    let delivered = 0;
    try {
      const res = await this.t.open(from, timeoutSeconds, signal);
      if (res.statusCode === 410) {
        res.resume();
        return { expired: true, delivered };
      }
      if (res.statusCode !== 200) {
        const body = await readBody(res);
        throw this.t.failure(res.statusCode ?? 0, body);
      }
      const decoder = new StringDecoder('utf8');
      let buf = '';
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buf += decoder.write(chunk);
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          const got = this.handle(line);
          if (got === undefined) {
            res.destroy();
            return { expired: true, delivered };
          }
          this.rv = got;
          delivered++;
        }
      }
      buf += decoder.end();
      if (buf.trim() !== '')
        throw new UnavailableError(`watch ${this.label}: the stream ended inside an event`);
      return { expired: false, delivered };
    } catch (e) {
      if (ctl.signal.aborted && ctl.signal.reason instanceof Error) throw ctl.signal.reason;
      throw e;
    } finally {
      clearTimeout(stalled);
    }
  }

  /** Delivers one watch event line; returns the resourceVersion it carries, or undefined on a 410 (expired). */
  private handle(line: string): string | undefined {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      throw new UnavailableError(`watch ${this.label}: a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const type = typeof ev === 'object' && ev !== null ? (ev as { type?: unknown }).type : undefined;
    const object = typeof ev === 'object' && ev !== null ? (ev as { object?: unknown }).object : undefined;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const o = this.t.toResource(object);
        const rv = o.metadata.resourceVersion;
        if (rv === undefined)
          throw new UnavailableError(`watch ${this.label}: an event without a resourceVersion`);
        const kind = type === 'ADDED' ? 'added' : type === 'MODIFIED' ? 'modified' : 'deleted';
        this.q.push({ type: kind, object: o, revision: rv });
        return rv;
      }
      case 'BOOKMARK': {
        const meta = (object as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata;
        const rv = meta?.resourceVersion;
        if (typeof rv !== 'string' || rv === '')
          throw new UnavailableError(`watch ${this.label}: a BOOKMARK without a resourceVersion`);
        this.q.push({ type: 'bookmark', revision: rv });
        return rv;
      }
      case 'ERROR': {
        const st = asStatus(object);
        if (st?.code === 410 || st?.reason === 'Expired' || st?.reason === 'Gone') return undefined;
        throw this.t.failure(st?.code ?? 500, st);
      }
      default:
        throw new UnavailableError(`watch ${this.label}: unknown event type ${JSON.stringify(type)}`);
    }
  }
}
