// The BIRD config parser, normalizer and differ that prove rendered configs against Calico's
// confd expectations by meaning rather than text.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BirdParseError,
  diffBird,
  normalizeBird,
  parseBirdFiles,
  parseBirdText,
  tokenize,
} from './support/bird/index.js';
import type { BirdModel, NormalizeOptions, Token } from './support/bird/index.js';

const FIXTURES = fileURLToPath(new URL('../../test/support/bird/fixtures/', import.meta.url));

function model(text: string, opts: NormalizeOptions = {}): BirdModel {
  return normalizeBird(parseBirdText(text), opts);
}

function diff(expected: string, actual: string): string[] {
  return diffBird(model(expected), model(actual));
}

function parseError(files: ReadonlyMap<string, string> | string, entry = 'bird.cfg'): BirdParseError {
  try {
    if (typeof files === 'string') normalizeBird(parseBirdText(files, entry));
    else normalizeBird(parseBirdFiles(files, entry));
  } catch (e) {
    if (e instanceof BirdParseError) return e;
    throw e;
  }
  assert.fail('expected a BirdParseError');
}

const MESH = `
template bgp bgp_template {
  debug { states };
  description "Connection to BGP peer";
  local as 64512;
  gateway recursive; # This should be the default, but just in case.
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
protocol bgp Mesh_10_192_0_3 from bgp_template {
  neighbor 10.192.0.3 port 177 as 64512;
  source address 10.192.0.2;  # The local address we use for the TCP connection
  import all;
  export filter {
    calico_export_to_bgp_peers(true);
    reject;
  };
  passive on;
}
protocol bgp Mesh_10_192_0_4 from bgp_template {
  neighbor 10.192.0.4 as 64512;
  source address 10.192.0.2;
  import all;
  export filter { calico_export_to_bgp_peers(true); reject; };
}
`;

describe('BIRD tokenizer', () => {
  it('drops_comments_and_keeps_strings_quoted_symbols_and_addresses', () => {
    const toks = tokenize(
      `# line comment\n/* block\ncomment */ function 'bgp_x-y.z'() { ifname ~ "a#b"; net ~ fd00:1::/64; 0x10; }`,
      'f.cfg',
    );
    const brief = toks.map((t) => `${t.kind}:${t.text}${t.quoted ? "'" : ''}`);
    assert.deepEqual(brief.slice(0, 4), ['word:function', "word:bgp_x-y.z'", 'punct:(', 'punct:)']);
    assert.ok(brief.includes('str:a#b'));
    assert.ok(brief.includes('ip6:fd00:1::'));
    assert.ok(brief.includes('num:0x10'));
    assert.deepEqual(toks[0]?.loc, { file: 'f.cfg', line: 3, column: 12 });
  });

  it('takes_the_longest_match_like_flex', () => {
    const kinds = tokenize('dead:beef::1 10.0.0.1 ::1 dead else: x', 'f').map((t) => `${t.kind}:${t.text}`);
    assert.deepEqual(kinds, [
      'ip6:dead:beef::1',
      'ip4:10.0.0.1',
      'ip6:::1',
      'word:dead',
      'word:else:',
      'word:x',
      'eof:',
    ]);
  });
});

describe('BIRD parser', () => {
  it('parses_every_top_level_form', () => {
    const cfg = parseBirdText(`
      router id 10.0.0.1;
      listen bgp address 10.0.0.1 port 1790;
      define ASN = 65001;
      function f(bool internal_peer; int n) { return n; }
      filter keep_all { accept; }
      template bgp T { local as ASN; }
      protocol bgp 'peer-1' from T { neighbor 10.0.0.2 as 65002; }
      protocol static { route 10.0.0.0/8 blackhole; }
    `);
    assert.deepEqual(
      cfg.items.map((i) =>
        i.kind === 'protocol'
          ? `${i.template ? 'template' : 'protocol'} ${i.type} ${i.name ?? '-'} ${i.from ?? '-'}`
          : i.kind,
      ),
      [
        'statement',
        'statement',
        'define',
        'function',
        'filter',
        'template bgp T -',
        'protocol bgp peer-1 T',
        'protocol static - -',
      ],
    );
    const m = normalizeBird(cfg);
    assert.deepEqual(m.globals, {
      'listen bgp address': '10.0.0.1',
      'listen bgp port': '1790',
      'router id': '10.0.0.1',
    });
    assert.deepEqual(m.functions['f'], { params: ['bool internal_peer', 'int n'], body: ['return n;'] });
    assert.deepEqual(m.filters['keep_all'], { body: ['accept;'] });
    assert.deepEqual(Object.keys(m.protocols), ['bgp peer-1', 'static static1']);
    assert.equal(m.protocols['bgp peer-1']?.options['local as'], '65001');
  });

  it('resolves_includes_through_the_map_relative_to_the_including_file_and_by_glob', () => {
    const files = new Map([
      ['etc/bird.cfg', 'include "bird_aggr.cfg";\ninclude "peers/*.cfg";\nrouter id 10.0.0.1;'],
      ['etc/bird_aggr.cfg', 'function calico_aggr() { if net = 10.0.0.0/26 then accept; }'],
      ['etc/peers/b.cfg', 'protocol bgp B { neighbor 10.0.0.3 as 1; local as 2; }'],
      ['etc/peers/a.cfg', 'protocol bgp A { neighbor 10.0.0.2 as 1; local as 2; }'],
    ]);
    const cfg = parseBirdFiles(files, 'etc/bird.cfg');
    assert.deepEqual(
      cfg.items.map((i) => i.loc.file),
      ['etc/bird_aggr.cfg', 'etc/peers/a.cfg', 'etc/peers/b.cfg', 'etc/bird.cfg'],
    );
    assert.deepEqual(Object.keys(normalizeBird(cfg).protocols), ['bgp A', 'bgp B']);
  });

  it('parses_channel_blocks_debug_sets_and_inline_filters', () => {
    const m = model(`
      protocol kernel {
        debug { routes, states };
        ipv4 {
          import none;
          export filter { if net ~ [ 10.0.0.0/8+ ] then accept; reject; };
        };
      }
      protocol bgp P { local as 1; neighbor 10.0.0.2 as 2; ipv4 { import filter x; export where net ~ 10.0.0.0/8; }; }
      filter x { accept; }
    `);
    assert.deepEqual(m.protocols['kernel kernel1']?.options, {
      debug: '{ routes, states }',
      'ipv4.export': { filter: [{ if: 'net ~ [ 10.0.0.0/8+ ]', then: ['accept;'] }, 'reject;'] },
      'ipv4.import': 'none',
    });
    assert.deepEqual(m.protocols['bgp P']?.options['ipv4.export'], {
      filter: [{ if: 'net ~ 10.0.0.0/8', then: ['accept;'] }, 'reject;'],
    });
    assert.equal(m.protocols['bgp P']?.options['ipv4.import'], 'filter x');
  });

  it('parses_the_filter_statements_calico_writes', () => {
    const m = model(`
      function apply_communities() {
        if ( net ~ 192.168.0.0/16 ) then {
          bgp_large_community.add((100, 555, 107));
          bgp_community.add((100, 6532));
        }
      }
      filter calico_kernel_programming {
        if ( net ~ 192.168.0.0/16 ) then {
          if defined(bgp_next_hop) && ( bgp_next_hop ~ 10.192.0.0/16 ) then
            krt_tunnel = "";
          else
            krt_tunnel = "tunl0";
          accept;
        }
        if ((net ~ [ 10.0.0.0/8{16,24}, fd00::/8- ])&&((defined(source))&&(source ~ [ RTS_BGP ]))) then { reject; }
        if (net.len > 24 || !(ifname ~ "eth*")) then reject;
        if ((net != 44.3.0.0/16) && net !~ 44.1.0.0/16) then { accept; } else { reject "no"; }
        accept;
      }
    `);
    assert.deepEqual(m.functions['apply_communities']?.body, [
      {
        if: 'net ~ 192.168.0.0/16',
        then: ['bgp_large_community.add((100, 555, 107));', 'bgp_community.add((100, 6532));'],
      },
    ]);
    assert.deepEqual(m.filters['calico_kernel_programming']?.body, [
      {
        if: 'net ~ 192.168.0.0/16',
        then: [
          {
            if: 'defined(bgp_next_hop) && bgp_next_hop ~ 10.192.0.0/16',
            then: ['krt_tunnel = "";'],
            else: ['krt_tunnel = "tunl0";'],
          },
          'accept;',
        ],
      },
      {
        if: 'net ~ [ 10.0.0.0/8{16,24}, fd00::/8- ] && defined(source) && source ~ [ RTS_BGP ]',
        then: ['reject;'],
      },
      { if: '24 < net.len || ifname !~ "eth*"', then: ['reject;'] },
      { if: 'net != 44.3.0.0/16 && net !~ 44.1.0.0/16', then: ['accept;'], else: ['reject "no";'] },
      'accept;',
    ]);
  });

  it('gives_and_and_or_one_left_associative_level_as_bird_does', () => {
    // conf/confbase.Y: %left AND OR, so this is (a || b) && c, not a || (b && c).
    const m = model('function f(bool a; bool b; bool c) { if a || b && c then accept; }');
    assert.deepEqual(m.functions['f']?.body, [{ if: '(a || b) && c', then: ['accept;'] }]);
    assert.notDeepEqual(m, model('function f(bool a; bool b; bool c) { if a || (b && c) then accept; }'));
  });

  it('parses_case_unset_locals_and_path_masks', () => {
    const m = model(`
      function g() int x; {
        x = 5;
        case net.len { 8, 16: accept; 24..32: reject; else: x = 1; }
        unset(bgp_med);
        if bgp_path ~ [= * 65000 * =] then bgp_path.prepend(65001);
      }
    `);
    assert.deepEqual(m.functions['g']?.body, [
      'int x;',
      'x = 5;',
      {
        case: 'net.len',
        arms: [
          { labels: '16, 8', body: ['accept;'] },
          { labels: '24..32', body: ['reject;'] },
          { labels: 'else', body: ['x = 1;'] },
        ],
      },
      'unset(bgp_med);',
      { if: 'bgp_path ~ [= * 65000 * =]', then: ['bgp_path.prepend(65001);'] },
    ]);
  });
});

describe('BIRD parse errors', () => {
  it('name_the_file_line_and_column', () => {
    const e = parseError('protocol bgp P {\n  neighbor 10.0.0.1 as 1\n}\n');
    assert.equal(e.message, 'bird.cfg:3:1: expected ";", got "}"');
    assert.deepEqual(e.loc, { file: 'bird.cfg', line: 3, column: 1 });
  });

  it('name_the_included_file_where_the_error_is', () => {
    const files = new Map([
      ['bird.cfg', '# head\ninclude "bird_ipam.cfg";\n'],
      ['bird_ipam.cfg', 'function f() {\n  if net ~ 10.0.0.0/8 then accept\n}\n'],
    ]);
    assert.equal(parseError(files).message, 'bird_ipam.cfg:3:1: expected ";", got "}"');
  });

  it('cover_lexical_and_semantic_mistakes', () => {
    const cases: [string, string][] = [
      ['description "open\n";', 'bird.cfg:1:13: unterminated string'],
      ['/* never closed', 'bird.cfg:1:1: unterminated comment'],
      ['router id 10.0.0.1; $', 'bird.cfg:1:21: unknown character "$"'],
      ['include "missing.cfg";', 'bird.cfg:1:9: included file "missing.cfg" not found'],
      [
        'function f() { if net ~ 10.0.0.1/8 then accept; }',
        'bird.cfg:1:25: invalid network prefix 10.0.0.1/8',
      ],
      [
        'function f() { if net.len < 8 < 9 then accept; }',
        'bird.cfg:1:31: comparisons do not chain; parenthesize before "<"',
      ],
      ['protocol bgp P from T { }', 'bird.cfg:1:1: template or protocol T not defined'],
      ['function f() { accept; }\nfilter f { accept; }', 'bird.cfg:2:1: f already defined at bird.cfg:1:1'],
      ['protocol bgp P { passive maybe; }', 'bird.cfg:1:26: expected on or off'],
      ['function f() { 1; }', 'bird.cfg:1:17: expected a statement, got ";"'],
    ];
    for (const [text, message] of cases) assert.equal(parseError(text).message, message, text);
  });
});

describe('normalizeBird', () => {
  it('ignores_comments_whitespace_parentheses_and_protocol_order', () => {
    const reordered = `
      template bgp bgp_template { debug {states}; description "Connection to BGP peer"; local as 64512;
        gateway recursive; add paths on; graceful restart; connect delay time 2; connect retry time 5;
        error wait time 5, 30; }
      /* the other peer first */
      protocol bgp Mesh_10_192_0_4 from bgp_template { neighbor 10.192.0.4 as 64512; source address 10.192.0.2;
        export filter { ((calico_export_to_bgp_peers(((true))))); reject; }; import all; }
      protocol bgp Mesh_10_192_0_3 from bgp_template { passive on; neighbor 10.192.0.3 port 177 as 64512;
        source address 10.192.0.2; export filter { calico_export_to_bgp_peers(true); reject; } }
    `;
    assert.deepEqual(diff(MESH, reordered), []);
    assert.deepEqual(model(MESH), model(reordered));
  });

  it('merges_templates_into_protocols_and_leaves_the_templates_out', () => {
    const m = model(MESH);
    assert.deepEqual(Object.keys(m.protocols), ['bgp Mesh_10_192_0_3', 'bgp Mesh_10_192_0_4']);
    assert.deepEqual(m.protocols['bgp Mesh_10_192_0_3']?.options, {
      'add paths': 'on',
      'connect delay time': '2',
      'connect retry time': '5',
      debug: '{ states }',
      description: '"Connection to BGP peer"',
      'error wait time': '5, 30',
      export: { filter: ['calico_export_to_bgp_peers(true);', 'reject;'] },
      'graceful restart': 'on',
      'local as': '64512',
      neighbor: '10.192.0.3',
      'neighbor as': '64512',
      'neighbor port': '177',
      passive: 'on',
      'source address': '10.192.0.2',
    });
    // The protocol's own option overrides the template's.
    const over = model(
      'template bgp T { local as 1; passive on; } protocol bgp P from T { local as 2; neighbor 10.0.0.9 as 3; }',
    );
    assert.equal(over.protocols['bgp P']?.options['local as'], '2');
    assert.equal(over.protocols['bgp P']?.options['passive'], 'on');
  });

  it('drops_options_equal_to_birds_defaults', () => {
    // iBGP: multihop is the default, and with it gateway recursive (proto/bgp/bgp.c).
    const explicit = `protocol bgp P { local as 1; neighbor 10.0.0.2 port 179 as 1; passive off; ttl security off;
      multihop; gateway recursive; import all; export none; debug off; add paths off; graceful restart aware; }`;
    const bare = 'protocol bgp P { local 10.0.0.1 as 1; neighbor 10.0.0.2 as 1; }';
    assert.deepEqual(diffBird(model(explicit), model(bare)), [
      'protocol bgp P: option "source address": expected (absent), got 10.0.0.1',
    ]);
    assert.deepEqual(model(explicit).protocols['bgp P']?.options, {
      'local as': '1',
      neighbor: '10.0.0.2',
      'neighbor as': '1',
    });
  });

  it('keeps_options_that_differ_from_defaults', () => {
    // eBGP is direct by default: `multihop` is a real setting there, and so is ttl security on.
    const m = model(
      'protocol bgp P { local as 1; neighbor 10.0.0.2 as 2; multihop; ttl security on; passive yes; }',
    );
    assert.deepEqual(m.protocols['bgp P']?.options, {
      'local as': '1',
      multihop: '64',
      neighbor: '10.0.0.2',
      'neighbor as': '2',
      passive: 'on',
      'ttl security': 'on',
    });
    assert.deepEqual(
      diff(
        'protocol bgp P { local as 1; neighbor 10.0.0.2 as 2; }',
        'protocol bgp P { local as 1; neighbor 10.0.0.2 as 2; direct; gateway direct; }',
      ),
      [],
    );
  });

  it('treats_static_routes_as_a_set', () => {
    const a = model('protocol static { route 10.0.0.0/24 blackhole; route 10.1.0.0/24 via 10.0.0.1; }');
    const b = model('protocol static { route 10.1.0.0/24 via 10.0.0.1; route 10.0.0.0/24 drop; }');
    assert.deepEqual(a, b);
    assert.deepEqual(a.protocols['static static1']?.routes, {
      '10.0.0.0/24': 'blackhole',
      '10.1.0.0/24': 'via 10.0.0.1',
    });
  });

  it('canonicalizes_values_within_expressions', () => {
    const pairs: [string, string][] = [
      ['if net.len > 24 then reject;', 'if 24 < net.len then reject;'],
      ['if !(net ~ 10.0.0.0/8) then reject;', 'if net !~ 10.0.0.0/8 then reject;'],
      [
        'if net ~ [ 10.0.0.0/8+, 10.0.0.0/8{8,32}, 192.168.0.0/16 ] then reject;',
        'if net ~ [192.168.0.0/16,10.0.0.0/8+] then reject;',
      ],
      ['bgp_community = add(bgp_community, (65000, 100));', 'bgp_community.add((65000,100));'],
      ['if net ~ fd00:0:0::/64 then accept;', 'if net ~ fd00::/64 then accept;'],
      ['if bgp_med = 0x10 then accept;', 'if bgp_med = 16 then accept;'],
      ["'my_func'();", 'my_func();'],
      ['if a && (b && c) then accept;', 'if (a && b) && c then accept;'],
      ['{ { accept; } }', 'accept;'],
    ];
    for (const [x, y] of pairs) {
      assert.deepEqual(diff(`function f() { ${x} }`, `function f() { ${y} }`), [], `${x} vs ${y}`);
    }
  });

  it('substitutes_defines_where_they_are_used', () => {
    const a = model(
      'define ASN = 64512; define POOL = 10.65.0.0/16; protocol bgp P { local as ASN; neighbor 10.0.0.2 as ASN; } function f() { if net ~ POOL then accept; }',
    );
    const b = model(
      'protocol bgp P { local as 64512; neighbor 10.0.0.2 as 64512; } function f() { if net ~ 10.65.0.0/16 then accept; }',
    );
    assert.deepEqual(a, b);
  });

  it('equates_an_accept_only_inline_filter_with_all', () => {
    assert.deepEqual(
      diff(
        'protocol bgp P { local as 1; neighbor 10.0.0.2 as 1; import filter { accept; }; }',
        'protocol bgp P { local as 1; neighbor 10.0.0.2 as 1; }',
      ),
      [],
    );
    assert.deepEqual(diff('protocol kernel { export filter { reject; }; }', 'protocol kernel { }'), []);
  });

  it('names_unnamed_protocols_as_bird_does', () => {
    const m = model(
      'protocol static static1 { } protocol static { } protocol kernel { } protocol device { }',
    );
    assert.deepEqual(Object.keys(m.protocols), [
      'device device1',
      'kernel kernel1',
      'static static1',
      'static static2',
    ]);
  });

  it('folds_a_single_ipv4_channel_into_the_protocol_only_when_asked', () => {
    const bird1 =
      'protocol kernel { learn; import all; export filter calico_kernel_programming; merge paths on; }';
    const bird2 =
      'protocol kernel { learn; ipv4 { import all; export filter calico_kernel_programming; }; merge paths on limit 16; }';
    assert.deepEqual(
      diffBird(model(bird1, { foldChannels: true }), model(bird2, { foldChannels: true })),
      [],
    );
    assert.deepEqual(diffBird(model(bird1), model(bird2)), [
      'protocol kernel kernel1: option "export": expected filter calico_kernel_programming, got (absent)',
      'protocol kernel kernel1: option "ipv4.export": expected (absent), got filter calico_kernel_programming',
      'protocol kernel kernel1: option "ipv4.import": expected (absent), got all',
    ]);
  });
});

describe('diffBird', () => {
  it('detects_a_changed_neighbor_as', () => {
    // The peer turns eBGP, whose default is a direct session with gateway direct, so the
    // template's `gateway recursive` now says something.
    assert.deepEqual(
      diff(MESH, MESH.replace('neighbor 10.192.0.4 as 64512', 'neighbor 10.192.0.4 as 64513')),
      [
        'protocol bgp Mesh_10_192_0_4: option "gateway": expected (absent), got recursive',
        'protocol bgp Mesh_10_192_0_4: option "neighbor as": expected 64512, got 64513',
      ],
    );
    const ebgp = 'protocol bgp P { local as 1; neighbor 10.0.0.2 as 2; }';
    assert.deepEqual(diff(ebgp, ebgp.replace('as 2', 'as 3')), [
      'protocol bgp P: option "neighbor as": expected 2, got 3',
    ]);
  });

  it('detects_a_missing_option', () => {
    const without = MESH.replace(
      'source address 10.192.0.2;  # The local address we use for the TCP connection',
      '',
    );
    assert.deepEqual(diff(MESH, without), [
      'protocol bgp Mesh_10_192_0_3: option "source address": expected 10.192.0.2, got (absent)',
    ]);
  });

  it('detects_a_reordered_filter_statement', () => {
    const body = ['reject_disabled_pools();', 'reject_local_routes();', 'calico_aggr();'];
    const d = diff(
      `function calico_export() { ${body.join(' ')} }`,
      `function calico_export() { ${[body[1], body[0], body[2]].join(' ')} }`,
    );
    assert.deepEqual(d, [
      'function calico_export: statement 1 (reject_disabled_pools();) moved to statement 2',
    ]);
    // Order matters in inline filters too.
    assert.deepEqual(
      diff(
        MESH,
        MESH.replace(
          'calico_export_to_bgp_peers(true);\n    reject;',
          'reject;\n    calico_export_to_bgp_peers(true);',
        ),
      ),
      [
        'protocol bgp Mesh_10_192_0_3: option "export": statement 1 (calico_export_to_bgp_peers(true);) moved to statement 2',
      ],
    );
  });

  it('detects_a_changed_prefix_in_a_function', () => {
    const aggr = (p: string): string => `function calico_aggr() {
      if ( net = 10.0.0.0/30 ) then { accept; }
      if ( net ~ 10.0.0.0/30 ) then { reject; }
      if ( net = ${p} ) then { accept; }
    }`;
    assert.deepEqual(diff(aggr('192.168.221.64/26'), aggr('192.168.221.0/26')), [
      'function calico_aggr: statement 3: expected if net = 192.168.221.64/26 then { accept; }, got if net = 192.168.221.0/26 then { accept; }',
    ]);
  });

  it('points_into_the_branch_of_an_if_whose_condition_is_unchanged', () => {
    const f = (t: string): string =>
      `filter k { if net ~ 10.0.0.0/8 then { krt_tunnel = "${t}"; accept; } accept; }`;
    assert.deepEqual(diff(f('tunl0'), f('')), [
      'filter k: statement 1 (if net ~ 10.0.0.0/8) then: statement 1: expected krt_tunnel = "tunl0";, got krt_tunnel = "";',
    ]);
  });

  it('reports_one_inserted_statement_once', () => {
    assert.deepEqual(diff('function f() { a(); b(); c(); }', 'function f() { a(); x(); b(); c(); }'), [
      'function f: statement 2: expected (absent), got x();',
    ]);
  });

  it('reports_missing_and_unexpected_protocols_functions_filters_and_globals', () => {
    assert.deepEqual(
      diff(
        'router id 1.1.1.1; function f() {} filter g { accept; } protocol device {}',
        'router id 1.1.1.2; function h(int x) { return x; } protocol static {}',
      ),
      [
        'global "router id": expected 1.1.1.1, got 1.1.1.2',
        'function f: missing (not in actual)',
        'function h: unexpected (not in expected)',
        'filter g: missing (not in actual)',
        'protocol device device1: missing (not in actual)',
        'protocol static static1: unexpected (not in expected)',
      ],
    );
    assert.deepEqual(diff('function f(int a) {}', 'function f(bool a) {}'), [
      'function f: parameters: expected (int a), got (bool a)',
    ]);
  });

  it('reports_static_route_differences_by_prefix', () => {
    assert.deepEqual(
      diff(
        'protocol static { route 10.0.0.0/24 blackhole; }',
        'protocol static { route 10.0.0.0/24 via 10.0.0.1; route 10.2.0.0/24 blackhole; }',
      ),
      [
        'protocol static static1: route 10.0.0.0/24: expected blackhole, got via 10.0.0.1',
        'protocol static static1: route 10.2.0.0/24: expected (absent), got blackhole',
      ],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Calico's own expected files

function readFixture(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of readdirSync(join(FIXTURES, dir)))
    if (f.endsWith('.cfg')) files.set(f, readFileSync(join(FIXTURES, dir, f), 'utf8'));
  return files;
}

/** Strips `#` comments outside strings. */
function stripComments(text: string): string {
  let out = '';
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"') inStr = !inStr;
    if (c === '#' && !inStr) {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
      continue;
    }
    out += c;
  }
  return out;
}

/** Top-level chunks by brace depth (comments already gone). */
function chunks(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') inStr = !inStr;
    if (inStr) continue;
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (depth === 0 && (c === ';' || c === '}')) {
      // `};` after an inline filter belongs to the same chunk; a lone `;` at top level too.
      let j = i + 1;
      while (text[j] === ' ' || text[j] === ';') j++;
      out.push(text.slice(start, j));
      start = j;
      i = j - 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** Comments gone, indentation and line breaks changed, redundant parentheses added, protocols reversed. */
function reformat(text: string): string {
  const parts = chunks(stripComments(text)).map((c) =>
    c
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .join('\n\t\t ')
      .replace(/if \( net (~|=) ([^ ]+) \) then/g, 'if (((net $1 $2))) then')
      .replace(/\{/g, '{\n'),
  );
  // Reverse the protocols between one template and the next (a protocol must follow the
  // template it copies).
  let seg: number[] = [];
  const flush = (): void => {
    const texts = seg.map((i) => parts[i] as string).reverse();
    seg.forEach((i, k) => (parts[i] = texts[k] as string));
    seg = [];
  };
  parts.forEach((p, i) => {
    if (/^\s*template\b/.test(p)) flush();
    else if (/^\s*protocol\b/.test(p)) seg.push(i);
  });
  flush();
  return parts.join('\n\n');
}

const FIXTURE_DIRS = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('Calico confd expected files', () => {
  it('are_all_present', () => {
    assert.deepEqual(FIXTURE_DIRS, [
      'bgpfilter-multi-filter',
      'ipip-cross-subnet',
      'ipv6-global-peer',
      'mesh-communities',
      'passwords',
      'route-reflector',
      'static-routes',
      'ttl-security',
    ]);
  });

  for (const dir of FIXTURE_DIRS) {
    for (const entry of ['bird.cfg', 'bird6.cfg']) {
      it(`${dir}_${entry.replace('.', '_')}_parses_and_equals_itself_and_a_reformatted_copy`, () => {
        const files = readFixture(dir);
        const m = normalizeBird(parseBirdFiles(files, entry));
        assert.ok(Object.keys(m.protocols).length >= 4, 'kernel, device, direct and static at least');
        assert.ok(Object.keys(m.functions).includes('calico_export_to_bgp_peers'));
        assert.deepEqual(diffBird(m, m), []);
        const re = new Map([...files].map(([k, v]) => [k, reformat(v)]));
        assert.notEqual(re.get(entry), files.get(entry));
        const m2 = normalizeBird(parseBirdFiles(re, entry));
        assert.deepEqual(diffBird(m, m2), []);
        assert.deepEqual(m2, m);
      });
    }
  }

  it('show_the_forms_each_scenario_was_chosen_for', () => {
    const m = (dir: string, entry = 'bird.cfg'): BirdModel =>
      normalizeBird(parseBirdFiles(readFixture(dir), entry));
    assert.deepEqual(m('mesh-communities').functions['apply_communities']?.body, [
      {
        if: 'net ~ 192.168.0.0/16',
        then: [
          'bgp_large_community.add((100, 555, 107));',
          'bgp_community.add((100, 6532));',
          'bgp_community.add((5663, 12));',
        ],
      },
    ]);
    assert.equal(m('mesh-communities').globals['listen bgp port'], '177');
    const rr = Object.values(m('route-reflector').protocols).filter((p) => p.options['rr client'] === 'on');
    assert.equal(rr.length, 2);
    assert.ok(rr.every((p) => p.options['rr cluster id'] === '10.0.0.1'));
    const pw = Object.values(m('passwords').protocols).flatMap((p) =>
      typeof p.options['password'] === 'string' ? [p.options['password']] : [],
    );
    assert.ok(pw.length >= 2, pw.join());
    const ttl = Object.values(m('ttl-security').protocols).filter((p) => p.options['ttl security'] === 'on');
    assert.ok(ttl.length >= 1 && ttl.every((p) => p.options['multihop'] === '1'));
    assert.ok(Object.keys(m('bgpfilter-multi-filter').functions).some((f) => f.includes('-')));
    assert.ok(
      Object.keys(m('static-routes').protocols['static static1']?.routes ?? {}).includes('10.101.0.0/16'),
    );
    assert.ok(
      Object.values(m('ipv6-global-peer', 'bird6.cfg').protocols).some((p) => {
        const n = p.options['neighbor'];
        return typeof n === 'string' && n.includes(':');
      }),
    );
  });

  it('detect_a_changed_neighbor_as_in_a_real_file', () => {
    const files = readFixture('route-reflector');
    const text = files.get('bird.cfg') as string;
    const expected = normalizeBird(parseBirdFiles(files));
    const changed = (from: string, to: string): string[] => {
      assert.ok(text.includes(from));
      return diffBird(
        expected,
        normalizeBird(parseBirdFiles(new Map(files).set('bird.cfg', text.replace(from, to)))),
      );
    };
    // An eBGP peer stays eBGP: one difference.
    assert.deepEqual(changed('neighbor 172.19.4.87 as 64533;', 'neighbor 172.19.4.87 as 64534;'), [
      'protocol bgp Node_172_19_4_87: option "neighbor as": expected 64533, got 64534',
    ]);
    // An iBGP peer turned eBGP: its written `multihop;` is no longer BIRD's default, so it shows.
    assert.deepEqual(changed('neighbor 10.192.0.3 as 64532;', 'neighbor 10.192.0.3 as 64533;'), [
      'protocol bgp Node_10_192_0_3: option "multihop": expected (absent), got 64',
      'protocol bgp Node_10_192_0_3: option "neighbor as": expected 64532, got 64533',
    ]);
  });

  it('do_not_depend_on_whitespace_or_comments_between_tokens', () => {
    const files = readFixture('bgpfilter-multi-filter');
    const expected = normalizeBird(parseBirdFiles(files));
    const seps = [' ', '\n', '\t', '  \n  ', ' # comment ; } {\n', ' /* { ; } */ '];
    const emit = (t: Token): string => {
      switch (t.kind) {
        case 'word':
          return t.quoted ? `'${t.text}'` : t.text;
        case 'str':
          return `"${t.text}"`;
        default:
          return t.text;
      }
    };
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: seps.length - 1 }), { minLength: 64, maxLength: 64 }),
        (picks) => {
          const re = new Map<string, string>();
          for (const [name, text] of files) {
            const toks = tokenize(text, name).filter((t) => t.kind !== 'eof');
            re.set(
              name,
              toks.map((t, i) => emit(t) + (seps[picks[i % picks.length] as number] as string)).join(''),
            );
          }
          assert.deepEqual(diffBird(expected, normalizeBird(parseBirdFiles(re))), []);
        },
      ),
      { numRuns: 25 },
    );
  });
});
