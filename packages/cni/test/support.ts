// Test support: the tabby plugin run as a function over the fakes, its stdout parsed.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../src/commands/run.js';
import type { PluginDeps } from '../src/commands/run.js';
import type { RunIo } from '../src/commands/skel.js';
import { FakeDataplane } from '../src/fakes/dataplane.js';
import { FakeIpam } from '../src/fakes/ipam.js';
import { FakeEndpoints } from '../src/fakes/endpoints.js';
import type { JsonObject } from '../src/spec/result.js';

export const NETNS = '/run/netns/pod1';
/** A path no MTU file is at: the tests never read the host's /var/lib/tabby/mtu. */
export const NO_MTU_FILE = join(tmpdir(), `tabby-cni-test-${process.pid}-absent`, 'mtu');
export const CID = 'c0ffee01';

export interface Invocation {
  readonly code: number;
  readonly out: JsonObject | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

export function conf(extra: JsonObject = {}): JsonObject {
  return {
    cniVersion: '1.1.0',
    name: 'k8s-pod-network',
    type: 'tabby',
    ipam: { type: 'tabby-ipam' },
    ...extra,
  };
}

export function attachEnv(command: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: CID,
    CNI_NETNS: NETNS,
    CNI_IFNAME: 'eth0',
    CNI_ARGS:
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=c0ffee01',
    CNI_PATH: '/opt/cni/bin',
    ...extra,
  };
}

export class World {
  readonly dataplane = new FakeDataplane().addNetns(NETNS);
  ipam = new FakeIpam();
  readonly endpoints = new FakeEndpoints();
  /** Datastore sessions opened and closed. */
  sessions = { opened: 0, closed: 0 };
  deps: PluginDeps;

  constructor(over: Partial<PluginDeps> = {}) {
    this.deps = {
      dataplane: () => Promise.resolve(this.dataplane),
      datastore: () => {
        this.sessions.opened++;
        return Promise.resolve({
          ipam: () => this.ipam,
          endpoints: this.endpoints,
          close: () => {
            this.sessions.closed++;
            return Promise.resolve();
          },
        });
      },
      nodename: () => Promise.resolve('node-1'),
      now: () => new Date('2025-01-02T03:04:05Z'),
      mtuFile: NO_MTU_FILE,
      // The fake IPAM has no pools that select by namespace: a read is a bug.
      readNamespace: (_k, ns) => Promise.reject(new Error(`unexpected read of namespace ${ns}`)),
      ...over,
    };
  }

  async invoke(
    env: Record<string, string>,
    stdin: JsonObject | string | RunIo['stdin'],
  ): Promise<Invocation> {
    let stdout = '';
    let stderr = '';
    const code = await run(
      {
        env,
        stdin: typeof stdin === 'object' && !(Symbol.asyncIterator in stdin) ? JSON.stringify(stdin) : stdin,
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
      },
      this.deps,
    );
    let out: JsonObject | undefined;
    if (stdout.trim() !== '') out = JSON.parse(stdout) as JsonObject;
    return { code, out, stdout, stderr };
  }

  /** ADD that must succeed; its result. */
  async add(c: JsonObject = conf(), env: Record<string, string> = {}): Promise<JsonObject> {
    const r = await this.invoke(attachEnv('ADD', env), c);
    assert.equal(r.code, 0, r.stdout);
    return r.out!;
  }
}

/** A JSON value as text: strings as they are. */
export const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** Asserts an error result with `code`, and that its text matches `re`. */
export function assertError(r: Invocation, code: number, re?: RegExp): void {
  assert.equal(r.code, 1, `expected an error, got ${r.stdout}`);
  assert.equal(r.out?.['code'], code, r.stdout);
  assert.equal(typeof r.out?.['msg'], 'string');
  if (re !== undefined) assert.match(`${text(r.out?.['msg'])}: ${text(r.out?.['details'] ?? '')}`, re);
}
