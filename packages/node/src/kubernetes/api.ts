// The few Kubernetes API calls the node daemon makes on built-in kinds (list, watch, and a
// PATCH of its Node's status), over @tabby/datastore's raw request: client-node's KubeConfig
// supplies TLS and credentials, and bodies stay the wire JSON the converters in
// bgpconfig/kubernetes.ts read (client-node's typed clients would turn them into classes).
import type { IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeRequest, parseStatus, readBody } from '@tabby/datastore/kubernetes';

/** A failed call: the API server's answer (code, Status reason) or no answer at all (code 0). */
export class KubernetesApiError extends Error {
  override readonly name = 'KubernetesApiError';
  constructor(
    /** The HTTP status; 0 when the server was not reached or did not answer in time. */
    readonly code: number,
    /** The Status reason (NotFound, Forbidden, Expired, ...), when the server sent one. */
    readonly reason: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Worth retrying as it is: no answer, 429, 5xx. */
  get transient(): boolean {
    return this.code === 0 || this.code === 429 || this.code >= 500;
  }
}

/** The error for an HTTP error response to `what` (a Status body, text, or nothing). */
export function apiError(what: string, code: number, body: unknown): KubernetesApiError {
  const st = parseStatus(body);
  const said = st?.message ?? (typeof body === 'string' && body.trim() !== '' ? body.trim() : undefined);
  const tail = said === undefined ? '' : `: ${said}`;
  switch (code) {
    case 401:
      return new KubernetesApiError(
        code,
        st?.reason,
        `${what}: the Kubernetes API server rejected our credentials (401 Unauthorized); check the token or client certificate`,
      );
    case 403:
      return new KubernetesApiError(code, st?.reason, `${what}: forbidden (403, RBAC)${tail}`);
    default:
      return new KubernetesApiError(
        code,
        st?.reason,
        `${what}: Kubernetes API server answered HTTP ${code}${st?.reason === undefined ? '' : ` ${st.reason}`}${tail}`,
      );
  }
}

export interface KubernetesApiOptions {
  /** Deadline of a list or patch request, in ms (a watch has its own). Default 30 000. */
  readonly requestTimeoutMs?: number;
}

export class KubernetesApi {
  /** The API server URL, without a trailing slash. */
  readonly server: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly kc: KubeConfig,
    opts: KubernetesApiOptions = {},
  ) {
    const c = kc.getCurrentCluster();
    if (c === null) throw new Error('the Kubernetes config has no current cluster (check current-context)');
    this.server = c.server.replace(/\/+$/, '');
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  private url(path: string, query: Readonly<Record<string, string>> = {}): URL {
    const q = new URLSearchParams(query).toString();
    return new URL(`${this.server}${path}${q === '' ? '' : `?${q}`}`);
  }

  /** One request with the deadline; a socket failure or timeout becomes a KubernetesApiError with code 0. */
  private async call(
    what: string,
    path: string,
    init: {
      query?: Record<string, string>;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
    },
  ): Promise<unknown> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    let text: string;
    let res: IncomingMessage;
    try {
      res = await kubeRequest(this.kc, this.url(path, init.query), {
        signal,
        ...(init.method !== undefined ? { method: init.method } : {}),
        ...(init.headers !== undefined ? { headers: init.headers } : {}),
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      text = await readBody(res);
    } catch (e) {
      const msg = signal.aborted
        ? `no answer within ${this.timeoutMs} ms`
        : e instanceof Error
          ? e.message
          : String(e);
      throw new KubernetesApiError(0, undefined, `${what}: cannot reach ${this.server}: ${msg}`, {
        cause: e,
      });
    }
    const code = res.statusCode ?? 0;
    if (code < 200 || code > 299) throw apiError(what, code, text);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new KubernetesApiError(code, undefined, `${what}: the answer is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** GET a collection (or one object) as wire JSON. */
  get(
    what: string,
    path: string,
    query: Record<string, string> = {},
    headers: Record<string, string> = {},
  ): Promise<unknown> {
    return this.call(what, path, { query, headers });
  }

  /** PATCH with the given patch type (Content-Type); resolves with the object the server returns. */
  patch(what: string, path: string, contentType: string, body: unknown): Promise<unknown> {
    return this.call(what, path, {
      method: 'PATCH',
      headers: { 'Content-Type': contentType },
      body: JSON.stringify(body),
    });
  }

  /** Opens a watch stream; the caller reads it (KubernetesWatch from @tabby/datastore/kubernetes). */
  openWatch(
    path: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    return kubeRequest(this.kc, this.url(path, query), { signal, headers });
  }
}
