// `bgp-ts run`: the standalone speaker. Config from YAML (checked before anything
// starts), pino logs with one structured line per session event, Prometheus metrics, a
// control socket for `bgp-ts status` and `bgp-ts rib`, reload on SIGHUP, and a clean stop
// (Cease / Administrative Shutdown) on SIGTERM.

import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import net from 'node:net';
import { rmSync } from 'node:fs';
import pino from 'pino';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Family, PeerStatus, UpdateGroupStatus } from '../speaker/index.js';
import { Speaker } from '../speaker/index.js';
import { PrefixList, describeNotification, parsePrefix, shutdownNotification } from '../wire/index.js';
import { attributesToJson } from '../wire/index.js';
import type { DaemonConfig } from './config.js';
import { loadConfig } from './config.js';
import { SpeakerMetrics } from './metrics.js';

export interface RunningDaemon {
  readonly speaker: Speaker;
  readonly metricsPort: number;
  /** Peers and listen ranges added, removed and changed (Speaker.reconfigure). */
  reload(): Promise<ReturnType<Speaker['reconfigure']>>;
  stop(message?: string): Promise<void>;
}

/** The control socket's answer to `status` (what `bgp-ts status` prints). */
export interface StatusReply {
  readonly peers: readonly (Omit<PeerStatus, 'since'> & { readonly seconds: number })[];
  readonly updateGroups: readonly UpdateGroupStatus[];
  /** Families whose routes wait for selection deferral to end (RFC 4724 §4.1). */
  readonly deferring: readonly Family[];
}

export interface DaemonOptions {
  /** Where logs go (default stdout). */
  readonly logDestination?: NodeJS.WritableStream;
  /** Install SIGHUP/SIGTERM/SIGINT handlers (the CLI does; tests do not). */
  readonly signals?: boolean;
}

export async function startDaemon(file: string, opts: DaemonOptions = {}): Promise<RunningDaemon> {
  let config = await loadConfig(file);
  const log: Logger = pino(
    { level: config.logLevel, base: { name: 'bgp-ts' } },
    opts.logDestination ?? process.stdout,
  );
  const registry = new Registry();
  const asnOf = new Map(config.peers.map((p) => [p.name, p.asn as number]));
  const speaker = new Speaker(
    config,
    {},
    {
      peerState: (peer, from, to, reason) => {
        const fields: Record<string, unknown> = { peer, from, to, reason: reason.kind };
        if ('notification' in reason) {
          fields['notification'] = describeNotification(reason.notification);
        }
        if ('detail' in reason) fields['detail'] = reason.detail;
        log.info(fields, `peer ${peer}: ${from} -> ${to}`);
        if (to === 'established') metrics.transitions.inc({ peer, peer_asn: asnOf.get(peer) ?? 0 });
      },
      endOfRib: (peer, family) => log.info({ peer, family }, `peer ${peer}: End-of-RIB ${family}`),
      internalError: (peer, err) => log.error({ peer, err }, `peer ${peer}: internal error, session reset`),
      selectionDeferralEnded: (family, reason) =>
        log.info({ family, reason }, `selection deferral over for ${family} (${reason}): routes go out`),
      message: (peer, direction, type, bytes) => {
        metrics.countMessage(peer, asnOf.get(peer) ?? 0, direction, type, bytes);
      },
      updateProcessed: (_peer, seconds) => metrics.updateSeconds.observe(seconds),
      dynamicPeer: (peer, range, change) => {
        log.info(
          { peer, range, change },
          `peer ${peer}: ${change === 'added' ? 'came in by' : 'gone from'} listen range ${range}`,
        );
        if (change === 'added') {
          const asn = config.listenRanges?.find((r) => r.name === range)?.peer.asn;
          asnOf.set(peer, asn ?? 0);
        } else {
          // Its series go with it, or every address that ever called would keep some.
          metrics.forget(peer, asnOf.get(peer) ?? 0);
          asnOf.delete(peer);
        }
      },
      refused: (address, reason) => {
        if (reason === 'maxPeers')
          log.warn({ address }, `connection from ${address} refused: its listen range is full`);
        else log.debug({ address }, `connection from ${address} refused: no such peer or listen range`);
      },
    },
  );
  const metrics = new SpeakerMetrics(registry, () =>
    speaker.status().map((s) => ({
      peer: s.name,
      peerAsn: s.asn,
      state: s.state,
      uptime: s.state === 'established' ? (performance.now() - s.since) / 1000 : 0,
      received: s.received,
      accepted: s.accepted,
      advertised: s.advertised,
      lastErrorCode: s.lastErrorCode,
    })),
  );
  await speaker.start();
  log.info(
    {
      routerId: config.routerId,
      asn: config.localAsn,
      port: speaker.port,
      peers: config.peers.length,
      listenRanges: config.listenRanges?.length ?? 0,
    },
    'started',
  );

  // Control socket: one JSON request per line, one JSON answer per line.
  rmSync(config.controlSocket, { force: true });
  const control = net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        s.write(`${JSON.stringify(answer(speaker, line))}\n`);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(config.controlSocket, () => resolve());
  });

  let http: HttpServer | undefined;
  let metricsPort = 0;
  if (config.metrics !== undefined) {
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(text);
          },
          (e: unknown) => {
            res.writeHead(500);
            res.end(String(e));
          },
        );
      } else if (req.url === '/healthz') {
        res.end('ok\n');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    http = server;
    await new Promise<void>((resolve) =>
      server.listen(config.metrics!.port, config.metrics!.address, () => resolve()),
    );
    const a = server.address();
    metricsPort = typeof a === 'object' && a !== null ? a.port : 0;
  }

  const reload = async () => {
    const next = await loadConfig(file);
    const r = speaker.reconfigure(next);
    for (const name of r.removed) metrics.forget(name, asnOf.get(name) ?? 0);
    for (const p of next.peers) asnOf.set(p.name, p.asn);
    config = next;
    log.info(r, 'configuration reloaded');
    return r;
  };
  const stop = async (message = 'bgp-ts shutting down') => {
    await speaker.stop(shutdownNotification(message));
    await new Promise<void>((resolve) => control.close(() => resolve()));
    rmSync(config.controlSocket, { force: true });
    if (http !== undefined) await new Promise<void>((resolve) => http.close(() => resolve()));
    log.info('stopped');
  };
  if (opts.signals === true) {
    process.on('SIGHUP', () => {
      reload().catch((e: unknown) =>
        log.error({ err: e }, 'reload failed; keeping the running configuration'),
      );
    });
    const quit = () => {
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', quit);
    process.once('SIGINT', quit);
  }
  return { speaker, metricsPort, reload, stop };
}

interface Request {
  command?: string;
  prefix?: string;
}

function answer(speaker: Speaker, line: string): unknown {
  let req: Request;
  try {
    req = JSON.parse(line) as Request;
  } catch {
    return { error: 'not JSON' };
  }
  switch (req.command) {
    case 'status': {
      // `since` is on this process's monotonic clock: send the elapsed seconds instead.
      const reply: StatusReply = {
        peers: speaker.status().map(({ since, ...s }: PeerStatus) => ({
          ...s,
          seconds: Math.round((performance.now() - since) / 1000),
        })),
        updateGroups: speaker.updateGroups(),
        deferring: speaker.deferring,
      };
      return reply;
    }
    case 'rib': {
      const p = req.prefix === undefined ? undefined : parsePrefix(req.prefix);
      if (req.prefix !== undefined && p === undefined) return { error: `not a prefix: ${req.prefix}` };
      if (p === undefined) {
        return { ipv4: speaker.ribs[1].size, ipv6: speaker.ribs[2].size };
      }
      const found = speaker.ribs[p.afi].lookup(PrefixList.parse(p.afi, [req.prefix!]), 0);
      if (found === undefined) return { prefix: req.prefix, routes: [] };
      const route = (r: (typeof found.routes)[number]) => ({
        peer: speaker.peerName(r.peer),
        pathId: r.pathId,
        attributes: attributesToJson(r.attributes),
      });
      return {
        prefix: req.prefix,
        best: route(found.best),
        decidedBy: found.decidedBy,
        routes: found.routes.map(route),
      };
    }
    default:
      return { error: `unknown command ${JSON.stringify(req.command)} (status, rib)` };
  }
}

/** Sends one request to a running daemon's control socket. */
export function ask(socketPath: string, request: Request): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    s.on('connect', () => s.write(`${JSON.stringify(request)}\n`));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.end();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    s.on('error', (e) => reject(new Error(`cannot reach the daemon at ${socketPath}: ${e.message}`)));
  });
}

export type { DaemonConfig };
