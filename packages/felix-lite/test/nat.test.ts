// NAT-outgoing: the nftables rendering (table-driven, exact text), the read-back comparison
// against nft 1.0.6's JSON, and the NatReconciler's loop against a fake nft that keeps the
// tables the scripts describe. The real kernel is in nat-kernel.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { NatOutgoing, NatPassResult, Nft, NftFamily, NftObject, PoolInput } from '../src/index.js';
import {
  computeDesired,
  ManualClock,
  NatConfigError,
  NatReconciler,
  natTableDiff,
  NftMissingError,
  planNat,
  renderNatScript,
} from '../src/index.js';

const natOf = (pools: PoolInput[]): readonly NatOutgoing[] =>
  computeDesired({ pools, paths: [], endpoints: [], affineBlocks: [], hostInterfaces: [] }).nat;

const V4_TABLE = (all: string, nat: string): string[] => [
  'table ip tabby {}',
  'delete table ip tabby',
  'table ip tabby {',
  '\tset all-pools {',
  '\t\ttype ipv4_addr',
  '\t\tflags interval',
  `\t\telements = { ${all} }`,
  '\t}',
  '',
  '\tset nat-pools {',
  '\t\ttype ipv4_addr',
  '\t\tflags interval',
  `\t\telements = { ${nat} }`,
  '\t}',
  '',
  '\tchain postrouting {',
  '\t\ttype nat hook postrouting priority srcnat; policy accept;',
  '\t\tip saddr @nat-pools ip daddr != @all-pools counter masquerade fully-random comment "tabby:nat-outgoing"',
  '\t}',
  '}',
];
const HEADER = '# Tabby NAT-outgoing: tables tabby are rewritten whole, edits by hand are reverted';
const DROP_V4 = ['table ip tabby {}', 'delete table ip tabby'];
const DROP_V6 = ['table ip6 tabby {}', 'delete table ip6 tabby'];

interface RenderCase {
  readonly name: string;
  readonly pools: PoolInput[];
  readonly lines: readonly string[];
}

const renderCases: RenderCase[] = [
  {
    name: 'no_pools_removes_both_tables',
    pools: [],
    lines: [...DROP_V4, ...DROP_V6],
  },
  {
    name: 'pools_without_nat_outgoing_remove_both_tables',
    pools: [{ cidr: '10.65.0.0/16' }, { cidr: 'fd10::/48', natOutgoing: false }],
    lines: [...DROP_V4, ...DROP_V6],
  },
  {
    name: 'one_ipv4_nat_pool_defines_the_ip_table_and_removes_the_ip6_one',
    pools: [{ cidr: '10.65.0.0/16', natOutgoing: true }],
    lines: [...V4_TABLE('10.65.0.0/16', '10.65.0.0/16'), ...DROP_V6],
  },
  {
    name: 'several_pools_all_count_as_destinations_and_only_nat_ones_as_sources_sorted_by_address',
    pools: [
      { cidr: '10.70.0.0/16', natOutgoing: true },
      { cidr: '10.9.0.0/16' },
      { cidr: '10.65.0.0/16', natOutgoing: true },
      { cidr: '192.168.128.0/24', natOutgoing: false },
    ],
    lines: [
      ...V4_TABLE('10.9.0.0/16, 10.65.0.0/16, 10.70.0.0/16, 192.168.128.0/24', '10.65.0.0/16, 10.70.0.0/16'),
      ...DROP_V6,
    ],
  },
  {
    name: 'disabled_pools_still_count_in_all_pools_and_still_masquerade',
    pools: [
      { cidr: '10.65.0.0/16', natOutgoing: true },
      { cidr: '10.66.0.0/16', disabled: true },
      { cidr: '10.67.0.0/16', disabled: true, natOutgoing: true },
    ],
    lines: [
      ...V4_TABLE('10.65.0.0/16, 10.66.0.0/16, 10.67.0.0/16', '10.65.0.0/16, 10.67.0.0/16'),
      ...DROP_V6,
    ],
  },
  {
    name: 'a_pool_inside_another_is_folded_into_it_as_nft_refuses_overlapping_intervals',
    pools: [
      { cidr: '10.65.0.0/16', natOutgoing: true },
      { cidr: '10.65.128.0/24', natOutgoing: true },
      { cidr: '10.0.0.0/8' },
    ],
    lines: [...V4_TABLE('10.0.0.0/8', '10.65.0.0/16'), ...DROP_V6],
  },
  {
    name: 'ipv6_nat_pool_defines_the_ip6_table_with_ip6_matches',
    pools: [{ cidr: 'fd10:0::/48', natOutgoing: true }, { cidr: 'fd20::/48' }, { cidr: '10.65.0.0/16' }],
    lines: [
      ...DROP_V4,
      'table ip6 tabby {}',
      'delete table ip6 tabby',
      'table ip6 tabby {',
      '\tset all-pools {',
      '\t\ttype ipv6_addr',
      '\t\tflags interval',
      '\t\telements = { fd10::/48, fd20::/48 }',
      '\t}',
      '',
      '\tset nat-pools {',
      '\t\ttype ipv6_addr',
      '\t\tflags interval',
      '\t\telements = { fd10::/48 }',
      '\t}',
      '',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tip6 saddr @nat-pools ip6 daddr != @all-pools counter masquerade fully-random comment "tabby:nat-outgoing"',
      '\t}',
      '}',
    ],
  },
];

describe('NAT-outgoing rendering', () => {
  for (const c of renderCases)
    it(c.name, () => {
      const script = renderNatScript(planNat(natOf(c.pools)));
      assert.deepEqual(script.split('\n'), [HEADER, ...c.lines, '']);
    });

  it('both_families_go_in_one_script_ip_first', () => {
    const script = renderNatScript(
      planNat(
        natOf([
          { cidr: 'fd10::/48', natOutgoing: true },
          { cidr: '10.65.0.0/16', natOutgoing: true },
        ]),
      ),
    );
    const tables = script.split('\n').filter((l) => l.endsWith('tabby {'));
    assert.deepEqual(tables, ['table ip tabby {', 'table ip6 tabby {']);
  });

  it('the_table_name_and_plain_masquerade_are_options', () => {
    const plan = planNat(natOf([{ cidr: '10.65.0.0/16', natOutgoing: true }]), {
      table: 'tnt_x',
      fullyRandom: false,
    });
    const script = renderNatScript(plan);
    assert.match(script, /^table ip tnt_x \{$/m);
    assert.match(script, / counter masquerade comment "tabby:nat-outgoing"$/m);
    assert.doesNotMatch(script, /tabby \{/);
  });

  it('refuses_input_it_cannot_render', () => {
    const bad: [readonly NatOutgoing[], RegExp][] = [
      [[{ family: 4, sources: ['10.65.0.1/16'], exceptDestinations: [] }], /host bits/],
      [[{ family: 4, sources: ['fd10::/48'], exceptDestinations: [] }], /not IPv4/],
      [[{ family: 6, sources: ['fd10::/48'], exceptDestinations: ['10.0.0.0/8'] }], /not IPv6/],
      [[{ family: 4, sources: ['10.65.0.0/16'], exceptDestinations: ['bogus'] }], /bogus/],
      [
        [
          { family: 4, sources: ['10.65.0.0/16'], exceptDestinations: [] },
          { family: 4, sources: ['10.66.0.0/16'], exceptDestinations: [] },
        ],
        /two NAT-outgoing entries/,
      ],
    ];
    for (const [nat, why] of bad)
      assert.throws(
        () => planNat(nat),
        (e: unknown) => e instanceof NatConfigError && why.test(e.message),
      );
    assert.throws(() => planNat([], { table: 'x; flush ruleset' }), NatConfigError);
  });

  it('a_source_missing_from_the_destinations_is_still_excluded_as_a_destination', () => {
    const plan = planNat([{ family: 4, sources: ['10.65.0.0/16'], exceptDestinations: ['10.70.0.0/16'] }]);
    assert.deepEqual(plan.tables[0]?.allPools, ['10.65.0.0/16', '10.70.0.0/16']);
  });
});

// --- nft's JSON, as nft 1.0.6 prints `nft -j list table` (captured from a namespace)

function nftJson(
  family: NftFamily,
  all: readonly unknown[],
  nat: readonly unknown[],
  masq: unknown = 'fully-random',
): NftObject[] {
  const type = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const set = (name: string, handle: number, elem: readonly unknown[]): NftObject => ({
    set: { family, name, table: 'tabby', type, handle, flags: ['interval'], elem },
  });
  return [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family, name: 'tabby', handle: 3 } },
    set('all-pools', 2, all),
    set('nat-pools', 3, nat),
    {
      chain: {
        family,
        table: 'tabby',
        name: 'postrouting',
        handle: 1,
        type: 'nat',
        hook: 'postrouting',
        prio: 100,
        policy: 'accept',
      },
    },
    {
      rule: {
        family,
        table: 'tabby',
        chain: 'postrouting',
        handle: 4,
        comment: 'tabby:nat-outgoing',
        expr: [
          {
            match: { op: '==', left: { payload: { protocol: family, field: 'saddr' } }, right: '@nat-pools' },
          },
          {
            match: { op: '!=', left: { payload: { protocol: family, field: 'daddr' } }, right: '@all-pools' },
          },
          { counter: { packets: 12, bytes: 840 } },
          { masquerade: { flags: masq } },
        ],
      },
    },
  ];
}

const prefix = (addr: string, len: number): unknown => ({ prefix: { addr, len } });

describe('NAT-outgoing read-back comparison', () => {
  const plan = planNat(natOf([{ cidr: '10.65.0.0/16', natOutgoing: true }, { cidr: '10.70.0.1/32' }]));
  const want = plan.tables[0];
  const good = (): NftObject[] =>
    nftJson('ip', [prefix('10.65.0.0', 16), '10.70.0.1'], [prefix('10.65.0.0', 16)]);

  it('the_table_as_nft_prints_it_matches_the_plan_whatever_the_counters_and_handles', () => {
    assert.deepEqual(natTableDiff(plan, want, 'ip', good()), []);
  });

  it('masquerade_flags_printed_as_a_list_match_too', () => {
    const objs = nftJson(
      'ip',
      [prefix('10.65.0.0', 16), '10.70.0.1'],
      [prefix('10.65.0.0', 16)],
      ['fully-random'],
    );
    assert.deepEqual(natTableDiff(plan, want, 'ip', objs), []);
  });

  it('absent_tables_agree_only_when_none_is_wanted', () => {
    assert.deepEqual(natTableDiff(plan, undefined, 'ip6', undefined), []);
    assert.deepEqual(natTableDiff(plan, want, 'ip', undefined), ['table ip tabby is missing']);
    assert.deepEqual(natTableDiff(plan, undefined, 'ip6', nftJson('ip6', [], [])), [
      'table ip6 tabby exists but no pool of the family needs NAT',
    ]);
  });

  const edits: [string, (o: NftObject[]) => NftObject[], RegExp][] = [
    ['a_flushed_table', (o) => o.filter((x) => !('rule' in x)), /holds 0 rules/],
    [
      'a_missing_element',
      (o) => o.map((x) => (isSet(x, 'all-pools') ? withElems(x, [prefix('10.65.0.0', 16)]) : x)),
      /set all-pools holds \{10\.65\.0\.0\/16\}/,
    ],
    [
      'an_extra_element',
      (o) => o.map((x) => (isSet(x, 'nat-pools') ? withElems(x, [prefix('10.65.0.0', 16), '8.8.8.8']) : x)),
      /set nat-pools/,
    ],
    [
      'an_extra_rule',
      (o) => [
        ...o,
        { rule: { family: 'ip', table: 'tabby', chain: 'postrouting', handle: 9, expr: [{ accept: null }] } },
      ],
      /holds 2 rules/,
    ],
    [
      'an_extra_chain',
      (o) => [...o, { chain: { family: 'ip', table: 'tabby', name: 'mine', handle: 8 } }],
      /chain mine we did not write/,
    ],
    [
      'an_extra_set',
      (o) => [...o, { set: { family: 'ip', table: 'tabby', name: 'mine', type: 'ipv4_addr', handle: 8 } }],
      /set mine we did not write/,
    ],
    [
      'a_chain_at_another_priority',
      (o) => o.map((x) => ('chain' in x ? { chain: { ...(x['chain'] as object), prio: 0 } } : x)),
      /not a nat chain/,
    ],
    [
      'masquerade_replaced_by_accept',
      (o) =>
        o.map((x) => ('rule' in x ? { rule: { ...(x['rule'] as object), expr: [{ accept: null }] } } : x)),
      /the rule differs/,
    ],
    [
      'a_rule_without_fully_random',
      (o) => o.map((x) => ('rule' in x ? rewriteMasq(x, {}) : x)),
      /the rule differs/,
    ],
  ];
  for (const [name, edit, why] of edits)
    it(`sees_${name}`, () => {
      const diff = natTableDiff(plan, want, 'ip', edit(good()));
      assert.ok(
        diff.some((d) => why.test(d)),
        `${why} not in ${JSON.stringify(diff)}`,
      );
    });
});

function isSet(o: NftObject, name: string): boolean {
  const s = o['set'];
  return typeof s === 'object' && s !== null && (s as { name?: unknown }).name === name;
}
function withElems(o: NftObject, elem: unknown[]): NftObject {
  return { set: { ...(o['set'] as object), elem } };
}
function rewriteMasq(o: NftObject, body: object): NftObject {
  const r = o['rule'] as { expr: unknown[] };
  return {
    rule: {
      ...r,
      expr: r.expr.map((e) =>
        typeof e === 'object' && e !== null && 'masquerade' in e ? { masquerade: body } : e,
      ),
    },
  };
}

// --- the loop, against a fake nft that turns our scripts into the tables nft would list

class FakeNft implements Nft {
  readonly scripts: string[] = [];
  readonly tables = new Map<NftFamily, NftObject[]>();
  lists = 0;
  missing = false;

  apply(script: string): Promise<void> {
    if (this.missing)
      return Promise.reject(new NftMissingError('nft not found: install the "nftables" package'));
    this.scripts.push(script);
    // our scripts: per family a drop, then possibly a definition whose elements lines are all-pools then nat-pools
    for (const f of ['ip', 'ip6'] as const) {
      const body = new RegExp(`^table ${f} tabby \\{\\n([\\s\\S]*?)^\\}$`, 'm').exec(script)?.[1];
      if (body === undefined) {
        this.tables.delete(f);
        continue;
      }
      const elems = [...body.matchAll(/elements = \{ (.*) \}/g)].map((m) =>
        (m[1] ?? '').split(', ').map((c) => {
          const [addr = '', len = ''] = c.split('/');
          return prefix(addr, Number(len));
        }),
      );
      this.tables.set(f, nftJson(f, elems[0] ?? [], elems[1] ?? []));
    }
    return Promise.resolve();
  }

  listTable(family: NftFamily): Promise<readonly NftObject[] | undefined> {
    this.lists++;
    if (this.missing)
      return Promise.reject(new NftMissingError('nft not found: install the "nftables" package'));
    return Promise.resolve(this.tables.get(family));
  }
}

function nextPass(r: NatReconciler): Promise<NatPassResult | Error> {
  return new Promise((resolve) => {
    const off = r.onPass((x) => {
      off();
      resolve(x);
    });
  });
}

describe('NatReconciler on a fake nft', () => {
  const pools: PoolInput[] = [{ cidr: '10.65.0.0/16', natOutgoing: true }, { cidr: '10.70.0.0/16' }];

  it('writes_nothing_before_the_desired_state_and_leaves_a_previous_table_alone', async () => {
    const nft = new FakeNft();
    nft.tables.set('ip', nftJson('ip', [prefix('10.1.0.0', 16)], [prefix('10.1.0.0', 16)]));
    const r = new NatReconciler({ nft });
    const res = await r.apply();
    assert.deepEqual(res, { written: false, differences: [] });
    assert.equal(nft.scripts.length, 0);
    assert.equal(nft.lists, 0);
  });

  it('writes_the_tables_once_and_a_pass_with_nothing_changed_writes_nothing', async () => {
    const nft = new FakeNft();
    const r = new NatReconciler({ nft });
    r.setDesired(natOf(pools));
    const first = await r.apply();
    assert.equal(first.written, true);
    assert.deepEqual(first.differences, ['table ip tabby is missing']);
    assert.equal(nft.scripts[0], renderNatScript(planNat(natOf(pools))));
    assert.deepEqual(
      natTableDiff(planNat(natOf(pools)), planNat(natOf(pools)).tables[0], 'ip', nft.tables.get('ip')),
      [],
    );
    const second = await r.apply();
    assert.deepEqual(second, { written: false, differences: [] });
    assert.equal(nft.scripts.length, 1);
  });

  it('repairs_drift_on_the_resync_timer', async () => {
    const nft = new FakeNft();
    const clock = new ManualClock();
    const r = new NatReconciler({ nft, clock, random: () => 0.5 }, { resyncIntervalMs: 1000 });
    r.setDesired(natOf(pools));
    r.start();
    let pass = nextPass(r);
    clock.advance(0);
    assert.equal(((await pass) as NatPassResult).written, true);
    nft.tables.set(
      'ip',
      (nft.tables.get('ip') ?? []).filter((o) => !('rule' in o)),
    ); // nft flush table ip tabby
    pass = nextPass(r);
    clock.advance(999);
    clock.advance(1);
    const repaired = (await pass) as NatPassResult;
    assert.equal(repaired.written, true);
    assert.deepEqual(repaired.differences, ['table ip tabby: chain postrouting holds 0 rules, wanted 1']);
    assert.equal(nft.scripts.length, 2);
    await r.stop();
  });

  it('the_same_plan_again_runs_no_pass_and_a_changed_one_does', async () => {
    // The node daemon calls setDesired on every datastore change; each pass forks nft twice.
    const nft = new FakeNft();
    const clock = new ManualClock();
    const r = new NatReconciler({ nft, clock, random: () => 0.5 }, { resyncIntervalMs: 60_000 });
    r.setDesired(natOf(pools));
    r.start();
    const pass = nextPass(r);
    clock.advance(0);
    assert.equal(((await pass) as NatPassResult).written, true);
    const lists = nft.lists;
    for (let i = 0; i < 5; i++) r.setDesired(natOf([...pools]));
    clock.advance(1000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(nft.lists, lists, 'an unchanged plan listed the tables again');
    const changed = nextPass(r);
    r.setDesired(natOf([...pools, { cidr: '10.80.0.0/16', natOutgoing: true }]));
    clock.advance(1000);
    const res = (await changed) as NatPassResult;
    assert.equal(res.written, true);
    assert.ok(nft.lists > lists);
    await r.stop();
  });

  it('removes_the_table_when_no_pool_needs_nat_any_more', async () => {
    const nft = new FakeNft();
    const r = new NatReconciler({ nft });
    r.setDesired(natOf(pools));
    await r.apply();
    r.setDesired(natOf([{ cidr: '10.65.0.0/16' }]));
    const res = await r.apply();
    assert.deepEqual(res.differences, ['table ip tabby exists but no pool of the family needs NAT']);
    assert.equal(nft.tables.size, 0);
    assert.equal(nft.scripts.at(-1), [HEADER, ...DROP_V4, ...DROP_V6, ''].join('\n'));
  });

  it('a_missing_nft_fails_the_pass_naming_the_package_and_retries_with_backoff', async () => {
    const nft = new FakeNft();
    nft.missing = true;
    const clock = new ManualClock();
    const r = new NatReconciler({ nft, clock, random: () => 0.5 }, { backoffInitialMs: 100 });
    r.setDesired(natOf(pools));
    r.start();
    let pass = nextPass(r);
    clock.advance(10);
    const err = await pass;
    assert.ok(err instanceof NftMissingError);
    assert.match(err.message, /nftables/);
    assert.equal(r.lastError, err);
    assert.equal(clock.nextIn(), 100);
    nft.missing = false;
    pass = nextPass(r);
    clock.advance(100);
    assert.equal(((await pass) as NatPassResult).written, true);
    assert.equal(r.lastError, undefined);
    await r.stop();
  });

  it('counts_passes_table_writes_drift_repairs_and_failures_in_the_dataplane_metrics', async () => {
    const registry = new Registry();
    const nft = new FakeNft();
    const r = new NatReconciler({ nft, registry });
    const metric = async (name: string, labels: Record<string, string>): Promise<number> => {
      const got = await registry.getSingleMetric(name)!.get();
      const v = got.values.find((x) =>
        Object.entries(labels).every(
          ([k, want]) => String((x.labels as Record<string, unknown>)[k]) === want,
        ),
      );
      return v?.value ?? 0;
    };
    r.setDesired(natOf(pools));
    await r.apply();
    await r.apply();
    assert.equal(await metric('tabby_dataplane_writes_total', { reconciler: 'nat', op: 'table' }), 1);
    assert.ok((await metric('tabby_dataplane_last_sync_timestamp_seconds', { reconciler: 'nat' })) > 0);
    // a new plan is not drift; the table flushed by hand is
    r.setDesired(natOf([...pools, { cidr: '10.80.0.0/16', natOutgoing: true }]));
    await r.apply();
    assert.equal(await metric('tabby_dataplane_drift_repairs_total', { reconciler: 'nat' }), 0);
    nft.tables.set(
      'ip',
      (nft.tables.get('ip') ?? []).filter((o) => !('rule' in o)),
    );
    await r.apply();
    assert.equal(await metric('tabby_dataplane_drift_repairs_total', { reconciler: 'nat' }), 1);
    assert.equal(await metric('tabby_dataplane_writes_total', { reconciler: 'nat', op: 'table' }), 3);
    nft.missing = true;
    await assert.rejects(r.apply(), NftMissingError);
    assert.equal(
      await metric('tabby_dataplane_reconcile_errors_total', {
        reconciler: 'nat',
        kind: 'pass',
        errno: 'none',
      }),
      1,
    );
    const passes = (
      await registry.getSingleMetric('tabby_dataplane_reconcile_duration_seconds')!.get()
    ).values.find(
      (x) =>
        (x as { metricName?: string }).metricName === 'tabby_dataplane_reconcile_duration_seconds_count' &&
        x.labels['reconciler'] === 'nat',
    );
    assert.equal(passes?.value, 5);
  });

  it('fails_loudly_when_what_nft_accepted_does_not_read_back_as_written', async () => {
    const nft = new FakeNft();
    const apply = nft.apply.bind(nft);
    nft.apply = async (s: string) => {
      await apply(s);
      nft.tables.set('ip', nftJson('ip', [], []));
    };
    const r = new NatReconciler({ nft });
    r.setDesired(natOf(pools));
    await assert.rejects(r.apply(), /read back differ/);
  });
});
