// `bgp-ts`: the command line. A function of (argv, stdin) -> (stdout, stderr, exit
// code), so tests run it in-process; bin/bgp-ts.js is three lines around it.

import { readFile } from 'node:fs/promises';
import type { AfiSafiKey, BgpMessage, CodecContext } from '../wire/index.js';
import {
  BgpNotification,
  IPV4_UNICAST,
  IPV6_UNICAST,
  JsonMessageError,
  MessageFramer,
  afiSafiKey,
  decodeFrame,
  encodeMessage,
  fromHex,
  makeContext,
  maxMessageLength,
  messageFromJson,
  messageToJson,
  notificationToJson,
  parseAfiSafiName,
  toHex,
} from '../wire/index.js';
import { demo } from './demo.js';
import { speakerDemo } from './speaker-demo.js';
import type { StatusReply } from '../daemon/index.js';
import { ConfigError, ask, loadConfig, startDaemon } from '../daemon/index.js';

export interface CliIo {
  readonly argv: readonly string[];
  readonly readStdin: () => Promise<string>;
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** Exit codes: 0 ok, 1 a malformed message (decode) or bad JSON (encode), 2 usage. */
export const EXIT_OK = 0;
export const EXIT_MALFORMED = 1;
export const EXIT_USAGE = 2;

const USAGE = `usage:
  bgp-ts decode [HEX ...] [--raw FILE] [--add-path[=FAMILIES]] [--as2] [--extended-message]
      Decodes BGP messages given as hex (marker optional, whitespace allowed, several
      back to back) in the arguments or on stdin, or as raw bytes from FILE. Prints one
      JSON object per message; a malformed one prints the NOTIFICATION it would cause
      and the command exits 1.
  bgp-ts encode [JSON] [--add-path[=FAMILIES]] [--as2] [--extended-message]
      The reverse: JSON messages (one object, an array, or one object per line) from the
      argument or stdin, printed as hex, one message per line.
  bgp-ts demo [--codec]
      Starts a route reflector and two nodes on loopback (127.0.0.41-43) from YAML,
      shows their status and routes, drains one node, and stops them all.
      With --codec: encodes a small sample session, then decodes it back and prints both.
  bgp-ts run --config FILE
      Runs the speaker described by the YAML FILE (docs/bgp-speaker.md). SIGHUP reloads
      it; SIGTERM stops every session with Cease / Administrative Shutdown.
  bgp-ts check --config FILE
      Checks FILE and exits; errors name the file, field and reason.
  bgp-ts status [--socket PATH] [-o json]
      The peer table of a running speaker: name, address, AS, state, since, prefixes, last error.
  bgp-ts rib [PREFIX] [--socket PATH]
      Routes held for PREFIX, best first, with the decision step that chose it.

  --add-path[=F,...]   path identifiers present for families F (ipv4-unicast,
                       ipv6-unicast; default both)
  --as2                the session did not negotiate 4-octet AS numbers (RFC 6793)
  --extended-message   messages up to 65535 bytes (RFC 8654)
`;

class UsageError extends Error {}

interface Options {
  ctx: CodecContext;
  raw?: string;
  rest: string[];
}

function parseOptions(args: readonly string[]): Options {
  let as4 = true;
  let extendedMessage = false;
  const addPath = new Set<AfiSafiKey>();
  let raw: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--as2') as4 = false;
    else if (a === '--extended-message') extendedMessage = true;
    else if (a === '--add-path') {
      addPath.add(IPV4_UNICAST);
      addPath.add(IPV6_UNICAST);
    } else if (a.startsWith('--add-path=')) {
      for (const name of a.slice('--add-path='.length).split(',')) {
        const f = parseAfiSafiName(name);
        if (f === undefined) throw new UsageError(`--add-path: unknown family ${JSON.stringify(name)}`);
        addPath.add(afiSafiKey(f.afi, f.safi));
      }
    } else if (a === '--raw') {
      raw = args[++i];
      if (raw === undefined) throw new UsageError('--raw needs a FILE');
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  const o: Options = { ctx: makeContext({ as4, extendedMessage, addPath }), rest };
  if (raw !== undefined) o.raw = raw;
  return o;
}

/**
 * Splits hex input into whole frames. Each message may come with or without its
 * 16-byte marker; without it, the input starts at the length field.
 */
export function framesFromHex(text: string, maxLength: number): Uint8Array[] {
  const bytes = fromHex(text.replace(/0x/gi, ''));
  const frames: Uint8Array[] = [];
  let p = 0;
  while (p < bytes.length) {
    let hasMarker = bytes.length - p >= 16;
    for (let i = 0; hasMarker && i < 16; i++) if (bytes[p + i] !== 0xff) hasMarker = false;
    const lenAt = hasMarker ? p + 16 : p;
    if (lenAt + 3 > bytes.length) throw new RangeError(`incomplete header at byte ${p}`);
    const len = ((bytes[lenAt] as number) << 8) | (bytes[lenAt + 1] as number);
    if (len < 19 || len > maxLength) {
      // Hand the bad length to the decoder, which names it as a NOTIFICATION.
      const f = new Uint8Array(19).fill(0xff);
      f.set(bytes.subarray(lenAt, lenAt + 3), 16);
      frames.push(f);
      return frames;
    }
    const size = hasMarker ? len : len - 16;
    if (p + size > bytes.length)
      throw new RangeError(`message at byte ${p} declares ${len} bytes; fewer follow`);
    if (hasMarker) frames.push(bytes.subarray(p, p + len));
    else {
      const f = new Uint8Array(len).fill(0xff, 0, 16);
      f.set(bytes.subarray(p, p + size), 16);
      frames.push(f);
    }
    p += size;
  }
  return frames;
}

function errorJson(e: BgpNotification): object {
  return { error: { ...notificationToJson(e), action: e.action, reason: e.reason } };
}

async function decodeCommand(opts: Options, io: CliIo): Promise<number> {
  let frames: Uint8Array[] = [];
  let status = EXIT_OK;
  const max = maxMessageLength(opts.ctx);
  if (opts.raw !== undefined) {
    const data = await readFile(opts.raw);
    const framer = new MessageFramer(max);
    try {
      framer.push(data, (_t, f) => frames.push(f));
    } catch (e) {
      if (!(e instanceof BgpNotification)) throw e;
      io.stdout(JSON.stringify(errorJson(e)) + '\n');
      status = EXIT_MALFORMED;
    }
    if (framer.buffered > 0) {
      io.stderr(`bgp-ts: ${framer.buffered} bytes at the end of ${opts.raw} are not a whole message\n`);
      status = EXIT_MALFORMED;
    }
  } else {
    const text = opts.rest.length > 0 ? opts.rest.join('') : await io.readStdin();
    try {
      frames = framesFromHex(text, max);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (frames.length === 0) throw new UsageError('no message given');
  }
  for (const f of frames) {
    let m: BgpMessage;
    try {
      m = decodeFrame(f, opts.ctx);
    } catch (e) {
      if (!(e instanceof BgpNotification)) throw e;
      io.stdout(JSON.stringify(errorJson(e)) + '\n');
      status = EXIT_MALFORMED;
      continue;
    }
    if (m.type === 'update' && m.malformed !== undefined) status = EXIT_MALFORMED;
    io.stdout(JSON.stringify(messageToJson(m)) + '\n');
  }
  return status;
}

function parseJsonInput(text: string): unknown[] {
  const t = text.trim();
  if (t === '') throw new UsageError('no JSON given');
  try {
    const v: unknown = JSON.parse(t);
    return Array.isArray(v) ? v : [v];
  } catch {
    // One object per line.
    return t
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l) as unknown;
        } catch (e) {
          throw new JsonMessageError(`line ${i + 1}`, `not JSON: ${(e as Error).message}`);
        }
      });
  }
}

async function encodeCommand(opts: Options, io: CliIo): Promise<number> {
  const text = opts.rest.length > 0 ? opts.rest.join(' ') : await io.readStdin();
  let items: unknown[];
  try {
    items = parseJsonInput(text);
  } catch (e) {
    if (e instanceof JsonMessageError) {
      io.stderr(`bgp-ts encode: ${e.message}\n`);
      return EXIT_MALFORMED;
    }
    throw e;
  }
  for (const [i, item] of items.entries()) {
    try {
      io.stdout(toHex(encodeMessage(messageFromJson(item), opts.ctx)) + '\n');
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) {
        io.stderr(`bgp-ts encode: message ${i + 1}: ${e.message}\n`);
        return EXIT_MALFORMED;
      }
      throw e;
    }
  }
  return EXIT_OK;
}

export async function run(io: CliIo): Promise<number> {
  const [cmd, ...args] = io.argv;
  try {
    switch (cmd) {
      case 'decode':
        return await decodeCommand(parseOptions(args), io);
      case 'encode':
        return await encodeCommand(parseOptions(args), io);
      case 'demo':
        return args.includes('--codec') ? demo(io) : await speakerDemo(io, (argv) => run({ ...io, argv }));
      case 'run':
      case 'check':
        return await runCommand(cmd, args, io);
      case 'status':
      case 'rib':
        return await controlCommand(cmd, args, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return cmd === undefined ? EXIT_USAGE : EXIT_OK;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`bgp-ts: ${e.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function runCommand(cmd: 'run' | 'check', args: readonly string[], io: CliIo): Promise<number> {
  const file = flag(args, '--config');
  if (file === undefined) throw new UsageError(`${cmd} needs --config FILE`);
  try {
    if (cmd === 'check') {
      const c = await loadConfig(file);
      io.stdout(`${file}: ok (${c.peers.length} peers, ${c.originate?.length ?? 0} originated prefixes)\n`);
      return EXIT_OK;
    }
    await startDaemon(file, { signals: true });
    return await new Promise<number>(() => {}); // runs until a signal stops the process
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(`bgp-ts: ${e.message}\n`);
      return EXIT_MALFORMED;
    }
    throw e;
  }
}

async function controlCommand(cmd: 'status' | 'rib', args: readonly string[], io: CliIo): Promise<number> {
  const socket = flag(args, '--socket') ?? '/run/bgp-ts.sock';
  const json = flag(args, '-o') === 'json';
  const prefix = args.find(
    (a, i) => !a.startsWith('-') && args[i - 1] !== '--socket' && args[i - 1] !== '-o',
  );
  let reply: unknown;
  try {
    reply = await ask(
      socket,
      cmd === 'status'
        ? { command: 'status' }
        : prefix === undefined
          ? { command: 'rib' }
          : { command: 'rib', prefix },
    );
  } catch (e) {
    io.stderr(`bgp-ts: ${(e as Error).message}\n`);
    return EXIT_MALFORMED;
  }
  if (json || cmd === 'rib') {
    io.stdout(`${JSON.stringify(reply, null, json ? 0 : 2)}\n`);
    return EXIT_OK;
  }
  const { peers, updateGroups, deferring } = reply as StatusReply;
  const rows = [
    ['Name', 'Address', 'AS', 'State', 'Since', 'Received', 'Accepted', 'Advertised', 'Last error'],
  ];
  for (const p of peers) {
    rows.push([
      p.name,
      p.address,
      String(p.asn),
      p.state,
      ago(p.seconds * 1000),
      String(p.received),
      String(p.accepted),
      String(p.advertised),
      p.lastError ?? '',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows)
    io.stdout(
      `${r
        .map((x, c) => x.padEnd(widths[c]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  // Peers sharing one Adj-RIB-Out (FRR's `show bgp update-groups`, in one line each).
  if (updateGroups.length > 0) io.stdout('\nUpdate groups:\n');
  for (const g of updateGroups) {
    const joining = g.joining.length > 0 ? `; catching up: ${g.joining.join(', ')}` : '';
    io.stdout(
      `  ${g.family}  ${g.prefixes} prefixes, ${g.pending} waiting  ${g.members.join(', ')}${joining}\n`,
    );
  }
  if (deferring.length > 0) {
    io.stdout(`\nSelection deferred (waiting for End-of-RIB after our restart): ${deferring.join(', ')}\n`);
  }
  return EXIT_OK;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
