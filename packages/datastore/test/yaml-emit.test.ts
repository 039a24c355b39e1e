// The YAML backend's emitter (src/backends/yaml/emit.ts): what it writes must read back as
// the same value, whatever the value; and for what resources hold it must be the text the
// `yaml` library would write, so files look as they did and as an operator would write them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Document, parse } from 'yaml';
import { emitYaml } from '../src/backends/yaml/emit.js';

const library = (o: Record<string, unknown>): string => new Document(o).toString();

describe('emitYaml', () => {
  it('writes_the_library_text_for_the_resources_a_cni_add_writes', () => {
    const block = {
      apiVersion: 'tabby.dev/v1',
      kind: 'IPAMBlock',
      metadata: {
        name: '10-77-60-64-26',
        namespace: undefined,
        labels: {},
        resourceVersion: '2642',
        uid: '8356ba41-9ad2-4ba0-9fe7-a24c3c0df911',
        creationTimestamp: '2026-11-23T14:26:46.575Z',
      },
      spec: {
        cidr: '10.77.60.64/26',
        affinity: 'host:n1',
        strictAffinity: false,
        allocations: [0, null, 1, null],
        unallocated: [2, 3],
        attributes: [
          {
            handle_id: 'tcb.c1',
            secondary: {
              namespace: 'default',
              node: 'n1',
              pod: 'p1',
              timestamp: '2026-11-23 14:26:46.575 +0000 UTC',
            },
          },
          { handle_id: null, secondary: {} },
        ],
        sequenceNumber: 12,
        deleted: false,
      },
    };
    const endpoint = {
      apiVersion: 'tabby.dev/v1',
      kind: 'WorkloadEndpoint',
      metadata: {
        name: 'n1-k8s-p1-eth0',
        namespace: 'default',
        labels: {
          'projectcalico.org/namespace': 'default',
          'projectcalico.org/orchestrator': 'k8s',
          app: 'web',
        },
        resourceVersion: '7',
      },
      spec: {
        orchestrator: 'k8s',
        node: 'n1',
        containerID: '5f1c0d9e2b',
        pod: 'p1',
        endpoint: 'eth0',
        interfaceName: 'cali182c452fe96',
        mac: 'ee:ee:ee:ee:ee:ee',
        ipNetworks: ['10.77.60.64/32', 'fd00:7a::1/128'],
        profiles: ['kns.default', 'ksa.default.default'],
        ports: [],
        allowSpoofedSourcePrefixes: [],
      },
    };
    const handle = {
      apiVersion: 'tabby.dev/v1',
      kind: 'IPAMHandle',
      metadata: { name: 'tcb.c1' },
      spec: { handleID: 'tcb.c1', block: { '10.77.60.64/26': 1 }, deleted: false },
    };
    for (const o of [block, endpoint, handle]) assert.equal(emitYaml(o), library(o), o.kind);
  });

  it('quotes_what_would_read_as_something_else_as_the_library_does', () => {
    const o = {
      rv: '2642',
      yes: 'true',
      nul: 'null',
      tilde: '~',
      float: '1.5',
      hex: '0x1f',
      exp: '1e3',
      empty: '',
      colon: 'a: b',
      hash: 'a #b',
      dash: '- x',
      lead: ' x',
      v6: '::1',
      star: '*x',
      keys: { '1': 'one', 'a b': 'c', true: 'd' },
    };
    assert.equal(emitYaml(o), library(o));
    assert.deepEqual(parse(emitYaml(o)), o);
  });

  it('hands_what_it_does_not_write_itself_to_the_library', () => {
    for (const o of [
      { a: [[1, 2], [3]] },
      { n: 0.5 },
      { big: 2 ** 60 },
      { long: 'x'.repeat(200) },
      { lines: 'a\nb\n' },
    ])
      assert.equal(emitYaml(o), library(o), JSON.stringify(o));
  });

  it('any_json_value_reads_back_the_same', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (value) => {
        // What the backend renders has been through JSON (its `plain`): no -0, no undefined.
        const o = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
        const text = emitYaml(o);
        assert.deepEqual(parse(text) ?? {}, o, text);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps_minus_zero_as_the_library_does', () => {
    // fast-check found this: -0 goes to the library, which writes and reads back -0.
    assert.equal(emitYaml({ a: [-0] }), library({ a: [-0] }));
    assert.ok(Object.is((parse(emitYaml({ a: [-0] })) as { a: number[] }).a[0], -0));
  });
});
