// The Kubernetes backend beyond the shared contract: 410 Gone, watches the server ends or
// drops, 5xx/429, error mapping (409, 422, 401), request deadlines, the metadata it returns,
// a core Namespace's labels, and that the in-process API server's error bodies have the
// documented Status shape.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { KubernetesBackend } from '../src/backends/kubernetes/index.js';
import type { KubernetesBackendOptions } from '../src/backends/kubernetes/index.js';
import type { Watch, WatchEvent } from '../src/store/backend.js';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../src/store/errors.js';
import { res } from './conformance/suite.js';
import { FakeApiServer, failure } from '../src/testing/fake-apiserver.js';
import type { FakeApiServerOptions, StatusBody } from '../src/testing/fake-apiserver.js';
import { kubeConfigFor } from '../src/testing/kube.js';
import { recorded } from '../src/testing/recorded.js';

const FAST: KubernetesBackendOptions = { backoffInitialMs: 20, backoffMaxMs: 200, requestTimeoutMs: 2000 };

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

async function setup(
  serverOpts: FakeApiServerOptions = {},
  opts: KubernetesBackendOptions = FAST,
): Promise<{ server: FakeApiServer; b: KubernetesBackend }> {
  const server = await FakeApiServer.start(serverOpts);
  open.push(server);
  const b = new KubernetesBackend(kubeConfigFor(server, serverOpts.token), opts);
  open.push(b);
  return { server, b };
}

/** Reads every event (errors and bookmarks too) until `done` says so or `ms` pass. */
async function until(w: Watch, done: (evs: WatchEvent[]) => boolean, ms = 5000): Promise<WatchEvent[]> {
  const evs: WatchEvent[] = [];
  const it = w[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (!done(evs)) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<'timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
      ),
    ]);
    clearTimeout(timer);
    if (r === 'timeout') assert.fail(`timed out; events so far: ${JSON.stringify(evs.map(brief))}`);
    if (r.done === true) assert.fail(`watch ended; events so far: ${JSON.stringify(evs.map(brief))}`);
    evs.push(r.value);
  }
  return evs;
}

function brief(e: WatchEvent): unknown {
  switch (e.type) {
    case 'added':
    case 'modified':
    case 'deleted':
      return [e.type, e.object.metadata.name];
    case 'resync':
      return ['resync', e.items.map((i) => i.metadata.name).sort()];
    case 'bookmark':
      return ['bookmark'];
    case 'error':
      return ['error', e.error.message];
  }
}

const changes = (evs: WatchEvent[]): unknown[] =>
  evs.filter((e) => e.type !== 'bookmark' && e.type !== 'error').map(brief);
const has = (evs: WatchEvent[], name: string): boolean =>
  evs.some((e) => 'object' in e && e.object.metadata.name === name);

describe('Kubernetes backend: watch recovery', () => {
  for (const expiredAs of ['event', 'http'] as const) {
    it(`a_410_${expiredAs === 'event' ? 'ERROR_event' : 'HTTP_response'}_resyncs_and_loses_no_change`, async () => {
      const { server, b } = await setup();
      server.expiredAs = expiredAs;
      const { revision } = await b.list('IPPool');
      const w = b.watch('IPPool', { revision });
      try {
        await b.create(res('IPPool', 'a', {}));
        await until(w, (e) => has(e, 'a'));
        // While the watch is cut, a change it never sees, then history compacted past it.
        server.dropWatches();
        server.createDirect('IPPool', { ...res('IPPool', 'missed', {}) });
        server.compact();
        const evs = await until(w, (e) => e.some((x) => x.type === 'resync'));
        const resync = evs.find((x) => x.type === 'resync');
        assert.ok(resync?.type === 'resync');
        assert.deepEqual(resync.items.map((i) => i.metadata.name).sort(), ['a', 'missed']);
        assert.equal(resync.revision, server.revision);
        await b.create(res('IPPool', 'after', {}));
        const more = await until(w, (e) => has(e, 'after'));
        assert.deepEqual(changes(more), [['added', 'after']]);
        // The re-list came after the 410, and the next watch started at the list's revision.
        const watches = server.requests.filter((r) => r.query['watch'] === 'true');
        assert.equal(watches.at(-1)?.query['resourceVersion'], resync.revision);
      } finally {
        w.close();
      }
    });
  }

  it('a_shrunken_history_window_sends_a_watch_from_an_old_revision_to_resync', async () => {
    const { server, b } = await setup();
    const { revision } = await b.list('BGPPeer');
    await b.create(res('BGPPeer', 'p1', {}));
    for (let i = 0; i < 5; i++) await b.create(res('Node', `n${i}`, {}));
    server.setHistoryWindow(2);
    const w = b.watch('BGPPeer', { revision });
    try {
      const evs = await until(w, (e) => e.some((x) => x.type === 'resync'));
      assert.deepEqual(changes(evs), [['resync', ['p1']]]);
    } finally {
      w.close();
    }
  });

  it('a_watch_the_server_ends_resumes_from_the_last_revision_with_no_loss_or_duplicate', async () => {
    // timeoutSeconds 1: the server ends every watch after 1-2 s, as it does after its timeout.
    const { server, b } = await setup({ bookmarkIntervalMs: 200 }, { ...FAST, watchTimeoutSeconds: 1 });
    const { revision } = await b.list('IPAMBlock');
    const w = b.watch('IPAMBlock', { revision });
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        names.push(`blk-${i}`);
        await b.create(res('IPAMBlock', `blk-${i}`, { i }));
        if (i === 2) server.endWatches();
        await new Promise((r) => setTimeout(r, 500));
      }
      const evs = await until(w, (e) => has(e, 'blk-5'));
      assert.deepEqual(
        changes(evs),
        names.map((n) => ['added', n]),
      );
      assert.ok(
        evs.some((e) => e.type === 'bookmark'),
        'bookmarks were asked for and delivered',
      );
      assert.ok(!evs.some((e) => e.type === 'error'), 'a clean end is not an error');
      const watches = server.requests.filter((r) => r.query['watch'] === 'true');
      assert.ok(watches.length >= 3, `reconnected (${watches.length} watch requests)`);
      for (const r of watches) {
        assert.equal(r.query['allowWatchBookmarks'], 'true');
        assert.ok(Number(r.query['timeoutSeconds']) >= 1 && Number(r.query['timeoutSeconds']) < 2);
      }
    } finally {
      w.close();
    }
  });

  it('500s_while_reconnecting_are_error_events_and_the_watch_recovers_where_it_was', async () => {
    const { server, b } = await setup();
    const { revision } = await b.list('BGPFilter');
    const w = b.watch('BGPFilter', { revision });
    try {
      await b.create(res('BGPFilter', 'f1', {}));
      await until(w, (e) => has(e, 'f1'));
      server.failNext(3, 500);
      server.dropWatches();
      const is500 = (e: WatchEvent): boolean => e.type === 'error' && e.error.message.includes('HTTP 500');
      const errs = await until(w, (e) => e.filter(is500).length >= 3);
      await b.create(res('BGPFilter', 'f2', {}));
      const evs = [...errs, ...(await until(w, (e) => has(e, 'f2')))];
      assert.equal(evs.filter(is500).length, 3, JSON.stringify(evs.map(brief)));
      assert.ok(evs.every((e) => e.type !== 'error' || e.error instanceof UnavailableError));
      // Continued from its revision: no resync, f1 not repeated.
      assert.deepEqual(changes(evs), [['added', 'f2']]);
    } finally {
      w.close();
    }
  });

  it('a_watch_on_an_unreachable_server_reports_errors_until_closed', async () => {
    const { server, b } = await setup();
    await server.close();
    const w = b.watch('Node');
    const evs = await until(w, (e) => e.filter((x) => x.type === 'error').length >= 2);
    assert.ok(evs.every((e) => e.type === 'error' && e.error instanceof UnavailableError));
    w.close();
    assert.equal((await w[Symbol.asyncIterator]().next()).done, true);
  });
});

describe('Kubernetes backend: requests and errors', () => {
  it('reads_retry_500_and_429_and_succeed', async () => {
    const { server, b } = await setup();
    await b.create(res('IPPool', 'p', { cidr: '10.65.0.0/16' }));
    server.failNext(2, 500);
    assert.equal((await b.get({ kind: 'IPPool', name: 'p' }))?.metadata.name, 'p');
    server.failNext(2, 429, 0);
    assert.equal((await b.list('IPPool')).items.length, 1);
  });

  it('reads_give_up_with_Unavailable_after_their_attempts', async () => {
    const { server, b } = await setup({}, { ...FAST, readAttempts: 3 });
    server.failNext(10, 503);
    const before = server.requests.length;
    await assert.rejects(
      b.list('IPPool'),
      (e: unknown) => e instanceof UnavailableError && /503/.test(e.message),
    );
    assert.equal(server.requests.length - before, 3);
  });

  it('a_write_that_failed_with_500_is_not_retried_but_a_429_one_is', async () => {
    const { server, b } = await setup();
    server.failNext(1, 500);
    await assert.rejects(b.create(res('BGPPeer', 'x', {})), UnavailableError);
    assert.equal(server.requests.filter((r) => r.method === 'POST').length, 1);
    assert.equal(await b.get({ kind: 'BGPPeer', name: 'x' }), undefined);
    // 429 means the server turned the request away before acting on it: safe to send again.
    server.failNext(1, 429, 0);
    await b.create(res('BGPPeer', 'x', {}));
    assert.equal(server.requests.filter((r) => r.method === 'POST').length, 3);
  });

  it('409_AlreadyExists_and_409_Conflict_map_to_their_errors', async () => {
    const { b } = await setup();
    const v1 = await b.create(res('Node', 'n', { a: 1 }));
    await assert.rejects(b.create(res('Node', 'n', {})), AlreadyExistsError);
    await b.update({ ...v1, spec: { a: 2 } });
    await assert.rejects(b.update({ ...v1, spec: { a: 3 } }), (e: unknown) => {
      assert.ok(e instanceof ConflictError);
      assert.equal(e.expected, v1.metadata.resourceVersion);
      return true;
    });
    await assert.rejects(
      b.delete({ kind: 'Node', name: 'n' }, { resourceVersion: v1.metadata.resourceVersion! }),
      ConflictError,
    );
    await assert.rejects(b.delete({ kind: 'Node', name: 'gone' }), NotFoundError);
  });

  it('422_maps_to_ValidationError_with_each_cause_as_an_issue', async () => {
    const { b } = await setup({
      validate: (o) => {
        const bs = (o['spec'] as { blockSize?: number } | undefined)?.blockSize;
        return bs !== undefined && bs > 32
          ? [
              {
                reason: 'FieldValueInvalid',
                message: `Invalid value: ${bs}: spec.blockSize in body should be less than or equal to 32`,
                field: 'spec.blockSize',
              },
            ]
          : [];
      },
    });
    await assert.rejects(b.create(res('IPPool', 'big', { blockSize: 33 })), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.issues, [
        {
          resource: 'IPPool big',
          path: 'spec.blockSize',
          reason: 'Invalid value: 33: spec.blockSize in body should be less than or equal to 32',
        },
      ]);
      return true;
    });
    await assert.rejects(b.create(res('IPPool', 'Not_A_Name', {})), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.issues[0]?.path, 'metadata.name');
      return true;
    });
    const ok = await b.create(res('IPPool', 'small', { blockSize: 26 }));
    await assert.rejects(b.update({ ...ok, spec: { blockSize: 40 } }), ValidationError);
  });

  it('a_request_past_its_deadline_is_Unavailable', async () => {
    const { server, b } = await setup({}, { ...FAST, requestTimeoutMs: 100, readAttempts: 1 });
    server.latencyMs = 1500;
    const t0 = Date.now();
    await assert.rejects(b.get({ kind: 'Node', name: 'n' }), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.match(e.message, /within 100 ms/);
      return true;
    });
    assert.ok(Date.now() - t0 < 1200, 'gave up at the deadline, not when the server answered');
  });

  it('objects_come_back_with_only_ObjectMeta_fields', async () => {
    const { server, b } = await setup();
    const made = await b.create(res('WorkloadEndpoint', 'pod-a', { node: 'n1' }, 'default'));
    const stored = server.createDirect('IPPool', { ...res('IPPool', 'direct', {}) });
    assert.ok('managedFields' in (stored['metadata'] as object), 'the fake stores server-side fields');
    for (const o of [
      made,
      (await b.list('IPPool')).items[0]!,
      (await b.get({ kind: 'WorkloadEndpoint', name: 'pod-a', namespace: 'default' }))!,
    ])
      assert.deepEqual(
        Object.keys(o.metadata).sort(),
        [
          'creationTimestamp',
          'name',
          'resourceVersion',
          'uid',
          ...('namespace' in o.metadata ? ['namespace'] : []),
        ].sort(),
      );
    assert.deepEqual(Object.keys(made).sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
  });

  it('a_namespaced_kind_needs_a_namespace_and_a_cluster_scoped_one_refuses_it', async () => {
    const { b } = await setup();
    await assert.rejects(b.create(res('WorkloadEndpoint', 'w', {})), ValidationError);
    await assert.rejects(b.create(res('IPPool', 'p', {}, 'default')), ValidationError);
  });

  it('delete_returns_exactly_the_deleted_state_even_when_the_object_changed_since_read', async () => {
    const { b } = await setup();
    const v1 = await b.create(res('IPAMHandle', 'h', { n: 1 }));
    const v2 = await b.update({ ...v1, spec: { n: 2 } });
    const gone = await b.delete({ kind: 'IPAMHandle', name: 'h' });
    assert.deepEqual(gone, v2);
  });

  it('calls_after_close_are_Unavailable_and_new_watches_end_at_once', async () => {
    const { b } = await setup();
    await b.close();
    await assert.rejects(b.get({ kind: 'Node', name: 'x' }), UnavailableError);
    const w = b.watch('Node');
    assert.equal((await w[Symbol.asyncIterator]().next()).done, true);
  });
});

describe("Kubernetes backend: a Namespace's labels", () => {
  it('reads_them_from_the_recorded_namespace', async () => {
    const { server, b } = await setup({ token: 't0k3n' });
    server.putNamespace(recorded('namespace-development.json') as Record<string, unknown>);
    assert.deepEqual(await b.namespaceLabels('development'), {
      'kubernetes.io/metadata.name': 'development',
      name: 'development',
    });
    const req = server.requests.at(-1)!;
    assert.deepEqual(
      [req.method, req.path, req.authorization],
      ['GET', '/api/v1/namespaces/development', 'Bearer t0k3n'],
    );
  });

  it('answers_NotFound_for_a_missing_namespace_and_retries_a_500', async () => {
    const { server, b } = await setup();
    await assert.rejects(
      b.namespaceLabels('nope'),
      (e: unknown) => e instanceof NotFoundError && e.message === 'Namespace nope not found',
    );
    // The fake's 404 is the documented one (a core kind's, as for pods), names replaced.
    const doc = JSON.stringify(recorded('status-404-notfound.json'))
      .replaceAll('pods', 'namespaces')
      .replaceAll('grafana', 'nope');
    const raw: unknown = await (await fetch(`${server.url}/api/v1/namespaces/nope`)).json();
    assert.deepEqual(raw, JSON.parse(doc));
    server.putNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bare' } });
    server.failNext(2, 500);
    assert.deepEqual(await b.namespaceLabels('bare'), {});
  });

  it('names_the_namespace_when_credentials_are_refused_or_the_answer_is_no_namespace', async () => {
    const { server } = await setup({ token: 'right' });
    const wrong = new KubernetesBackend(kubeConfigFor(server, 'wrong'), FAST);
    open.push(wrong);
    await assert.rejects(
      wrong.namespaceLabels('development'),
      (e: unknown) => e instanceof UnavailableError && /get Namespace development: .*401/.test(e.message),
    );
    server.putNamespace({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'odd' } });
    const b = new KubernetesBackend(kubeConfigFor(server, 'right'), FAST);
    open.push(b);
    await assert.rejects(b.namespaceLabels('odd'), /is not a Namespace/);
  });
});

describe('in-process API server: error bodies have the documented Status shape', () => {
  const fields = recorded('status-fields.json') as Record<string, Record<string, string>>;

  function checkStatus(st: unknown, code: number): void {
    assert.ok(typeof st === 'object' && st !== null);
    const s = st as Record<string, unknown>;
    for (const k of Object.keys(s)) assert.ok(k in fields['Status']!, `Status has no field ${k}`);
    assert.equal(s['kind'], 'Status');
    assert.equal(s['apiVersion'], 'v1');
    assert.deepEqual(s['metadata'], {});
    assert.equal(s['status'], 'Failure');
    assert.equal(s['code'], code);
    assert.equal(typeof s['message'], 'string');
    assert.equal(typeof s['reason'], 'string');
    const d = s['details'] as Record<string, unknown> | undefined;
    for (const k of Object.keys(d ?? {}))
      assert.ok(k in fields['StatusDetails']!, `StatusDetails has no field ${k}`);
    for (const c of (d?.['causes'] as Record<string, unknown>[] | undefined) ?? [])
      for (const k of Object.keys(c)) assert.ok(k in fields['StatusCause']!, `StatusCause has no field ${k}`);
  }

  /** The JSON types of each key, recursively: what "the same shape" means. */
  function shape(v: unknown): unknown {
    if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
    return typeof v;
  }

  async function raw(
    server: FakeApiServer,
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: unknown }> {
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        'Content-Type': 'application/json',
        ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  const P = '/apis/tabby.dev/v1/ippools';

  it('404_has_the_fields_and_shape_of_the_documented_example', async () => {
    const { server } = await setup();
    const r = await raw(server, 'GET', `${P}/grafana`);
    assert.equal(r.status, 404);
    checkStatus(r.body, 404);
    const doc = recorded('status-404-notfound.json') as StatusBody;
    checkStatus(doc, 404);
    // Ours also names the group (errors.go sets it; the pods example is the core group, "").
    const { group, ...details } = (r.body as StatusBody).details!;
    assert.equal(group, 'tabby.dev');
    assert.deepEqual(shape({ ...(r.body as StatusBody), details }), shape(doc));
    assert.equal((r.body as StatusBody).message, 'ippools.tabby.dev "grafana" not found');
  });

  it('409_422_401_500_and_429_bodies_are_Status_objects', async () => {
    const { server } = await setup();
    const obj = { apiVersion: 'tabby.dev/v1', kind: 'IPPool', metadata: { name: 'p' }, spec: {} };
    const made = await raw(server, 'POST', P, obj);
    assert.equal(made.status, 201);
    const exists = await raw(server, 'POST', P, obj);
    checkStatus(exists.body, 409);
    assert.equal((exists.body as StatusBody).reason, 'AlreadyExists');
    const stale = await raw(server, 'PUT', `${P}/p`, {
      ...obj,
      metadata: { name: 'p', resourceVersion: '1' },
    });
    checkStatus(stale.body, 409);
    assert.equal((stale.body as StatusBody).reason, 'Conflict');
    assert.match(
      (stale.body as StatusBody).message!,
      /^Operation cannot be fulfilled on ippools\.tabby\.dev "p": the object has been modified; please apply your changes to the latest version and try again$/,
    );
    const noVersion = await raw(server, 'PUT', `${P}/p`, obj);
    checkStatus(noVersion.body, 422);
    assert.deepEqual(
      (noVersion.body as StatusBody).details?.causes?.map((c) => c.field),
      ['metadata.resourceVersion'],
    );
    const pre = await raw(server, 'DELETE', `${P}/p`, {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      preconditions: { resourceVersion: '1' },
    });
    checkStatus(pre.body, 409);
    server.failNext(1, 500);
    checkStatus((await raw(server, 'GET', P)).body, 500);
    server.failNext(1, 429, 1);
    checkStatus((await raw(server, 'GET', P)).body, 429);
    server.token = 'secret';
    checkStatus((await raw(server, 'GET', P)).body, 401);
    // A deleted custom resource is answered with a success Status, not the object.
    const del = await raw(server, 'DELETE', `${P}/p`, undefined, 'secret');
    assert.equal(del.status, 200);
    assert.equal((del.body as StatusBody).status, 'Success');
  });

  it('a_watch_from_a_compacted_revision_gets_an_ERROR_event_with_a_410_Expired_Status_then_ends', async () => {
    const { server } = await setup();
    server.createDirect('IPPool', {
      apiVersion: 'tabby.dev/v1',
      kind: 'IPPool',
      metadata: { name: 'x' },
      spec: {},
    });
    server.compact();
    const r = await fetch(`${server.url}${P}?watch=true&resourceVersion=1000`);
    assert.equal(r.status, 200);
    const lines = (await r.text()).trim().split('\n');
    assert.equal(lines.length, 1);
    const ev = JSON.parse(lines[0]!) as { type: string; object: StatusBody };
    assert.equal(ev.type, 'ERROR');
    checkStatus(ev.object, 410);
    assert.equal(ev.object.reason, 'Expired');
    assert.deepEqual(ev.object, failure(410, 'Expired', 'too old resource version: 1000 (1002)'));
  });

  it('bookmark_events_and_lists_have_the_shape_of_the_documented_examples', async () => {
    const { server } = await setup({ bookmarkIntervalMs: 50 });
    const list = await raw(server, 'GET', P);
    const docList = recorded('list-response.json') as Record<string, unknown>;
    assert.deepEqual(shape(list.body), shape(docList));
    const ctl = new AbortController();
    const r = await fetch(
      `${server.url}${P}?watch=true&resourceVersion=${server.revision}&allowWatchBookmarks=true`,
      {
        signal: ctl.signal,
      },
    );
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('\n'))
      text += new TextDecoder().decode((await reader.read()).value as Uint8Array | undefined);
    ctl.abort();
    const ev = JSON.parse(text.split('\n')[0]!) as unknown;
    const doc = recorded('watch-bookmark-event.json');
    assert.deepEqual(shape(ev), shape(doc));
    assert.equal((ev as { object: { kind: string } }).object.kind, 'IPPool');
  });
});
