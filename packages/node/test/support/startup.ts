// Shared helpers for the start-up tests: a logger that records, settings from an environment
// table, a host described by a table, and a memory datastore with IPAM.
import assert from 'node:assert/strict';
import type { Node } from '@tabby/datastore';
import { Datastore, Ipam, MemoryBackend, parseResource, readManifest } from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';
import type { HostInterface, Settings, SettingsInput } from '../../src/index.js';
import { resolveSettings, StaticHostNetwork } from '../../src/index.js';

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A pino-style logger that keeps every line, for assertions on what was said. */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = [];
  debug(fields: object, msg: string): void {
    this.entries.push({ level: 'debug', fields: fields as Record<string, unknown>, msg });
  }
  info(fields: object, msg: string): void {
    this.entries.push({ level: 'info', fields: fields as Record<string, unknown>, msg });
  }
  warn(fields: object, msg: string): void {
    this.entries.push({ level: 'warn', fields: fields as Record<string, unknown>, msg });
  }
  error(fields: object, msg: string): void {
    this.entries.push({ level: 'error', fields: fields as Record<string, unknown>, msg });
  }
  at(level: LogEntry['level']): string[] {
    return this.entries.filter((e) => e.level === level).map((e) => e.msg);
  }
}

/** Settings from an environment table (node name node-a unless NODENAME says otherwise). */
export function settingsFrom(
  env: Record<string, string>,
  extra: Partial<Omit<SettingsInput, 'env'>> = {},
): Settings {
  const r = resolveSettings({
    env: { NODENAME: 'node-a', ...env },
    readNodenameFile: () => undefined,
    hostname: () => 'host',
    ...extra,
  });
  if (!r.ok) assert.fail(r.error.message);
  return r.settings;
}

let nextIndex = 1;
/** An interface for a host table: `iface('eth0', '10.0.0.5/24', 'fd00::5/64')`. */
export function iface(name: string, ...cidrs: string[]): HostInterface {
  return {
    name,
    index: nextIndex++,
    addresses: cidrs.map((c) => {
      const [address, len] = c.split('/') as [string, string];
      return { family: address.includes(':') ? 6 : 4, address, prefixLen: Number(len) };
    }),
  };
}

/** A typical host: lo, eth0 (10.0.0.5/24, fd00::5/64, fe80::1/64), docker0 and a Calico veth. */
export function typicalHost(routes: Record<string, string> = {}): StaticHostNetwork {
  return new StaticHostNetwork(
    [
      iface('lo', '127.0.0.1/8', '::1/128'),
      iface('eth0', '10.0.0.5/24', 'fd00::5/64', 'fe80::1/64'),
      iface('docker0', '172.17.0.1/16'),
      iface('cali0123456789a'),
    ],
    routes,
  );
}

export function datastore(): { ds: Datastore; ipam: Ipam; backend: MemoryBackend } {
  const backend = new MemoryBackend();
  return {
    ds: new Datastore(backend),
    ipam: new Ipam({ backend, clock: { now: () => 0, sleep: () => Promise.resolve() } }),
    backend,
  };
}

/** Stores the resources of a YAML manifest (Calico's apiVersion is fine). */
export async function seed(ds: Datastore, yaml: string): Promise<void> {
  for (const d of readManifest(yaml)) {
    const r = parseResource(d.toJS());
    if (!r.ok) assert.fail(JSON.stringify(r.issues));
    await ds.create(r.resource);
  }
}

export async function nodeOf(ds: Datastore, name = 'node-a'): Promise<Node> {
  const n = await ds.get('Node', name);
  assert.ok(n, `no Node ${name}`);
  return n;
}
