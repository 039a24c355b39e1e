// One raw HTTP request to the API server, with client-node's TLS settings and credentials
// (bearer token, client certificate, exec plugin; the in-cluster token file re-read as it
// rotates). Used where client-node's generated clients do not fit: watches (its Watch class
// cannot be aborted before the response headers arrive, drops the body of an error response,
// the 410 Status, and skips lines it cannot parse) and reads that must keep the wire JSON.
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Aborts the request, or the response body while it is read. */
  readonly signal: AbortSignal;
}

/** Sends the request; resolves with the response once its headers arrive (read the body from it). */
export async function kubeRequest(kc: KubeConfig, url: URL, req: KubeRequest): Promise<IncomingMessage> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const mod = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string | number | string[]> = {
    Accept: 'application/json',
    ...(opts.headers as Record<string, string> | undefined),
    ...req.headers,
  };
  if (req.body !== undefined) headers['Content-Length'] = Buffer.byteLength(req.body);
  return await new Promise<IncomingMessage>((resolve, reject) => {
    const r = mod.request(
      url,
      { ...opts, method: req.method ?? 'GET', signal: req.signal, headers },
      resolve,
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

/** The whole body of a response, as text. */
export async function readBody(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}
