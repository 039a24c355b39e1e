// A BgpConfig written as the BIRD 2 configuration Calico v3.31.7's confd templates produce
// (confd/etc/calico/confd/templates/bird{,6}{,_aggr,_ipam}.cfg.template): same files, same
// protocol and function names, same statements, so an operator can diff it against a Calico
// node's /etc/calico/confd/config. Calico's explanatory comments are kept where they help.
import type {
  BgpConfig,
  Family,
  FamilyConfig,
  FilterConfig,
  FilterRuleConfig,
  PeerConfig,
} from '../model.js';

export interface BirdFiles {
  readonly 'bird.cfg': string;
  readonly 'bird_aggr.cfg': string;
  readonly 'bird_ipam.cfg': string;
  readonly 'bird6.cfg': string;
  readonly 'bird6_aggr.cfg': string;
  readonly 'bird6_ipam.cfg': string;
}

export interface BirdOptions {
  /** Print passwords; otherwise they are written as "<redacted>". */
  readonly showSecrets?: boolean;
}

export function renderBird(cfg: BgpConfig, opts: BirdOptions = {}): BirdFiles {
  return {
    'bird.cfg': main(cfg, cfg.ipv4, opts),
    'bird_aggr.cfg': aggr(cfg.ipv4),
    'bird_ipam.cfg': ipam(cfg.ipv4),
    'bird6.cfg': main(cfg, cfg.ipv6, opts),
    'bird6_aggr.cfg': aggr(cfg.ipv6),
    'bird6_ipam.cfg': ipam(cfg.ipv6),
  };
}

const sfx = (f: Family): string => (f === 4 ? '' : '6');

function logging(cfg: BgpConfig): string[] {
  if (cfg.logLevel === 'debug') return ['  debug all;'];
  if (cfg.logLevel === 'info') return ['  debug { states };'];
  return [];
}

function communityStatements(fc: FamilyConfig): string[] {
  const out: string[] = [];
  for (const p of fc.exports.prefixAdvertisements) {
    out.push(`      if ( net ~ ${p.cidr} ) then {`);
    for (const c of p.communities) {
      const parts = c.split(':');
      out.push(
        parts.length === 2
          ? `          bgp_community.add((${parts[0]}, ${parts[1]}));`
          : `          bgp_large_community.add((${parts[0]}, ${parts[1]}, ${parts[2]}));`,
      );
    }
    out.push('      }');
  }
  return out;
}

/** template_funcs.go filterStatement. */
export function filterStatement(r: FilterRuleConfig): string {
  const conds: string[] = [];
  if (r.cidr !== undefined && r.operator !== undefined) {
    const op = { Equal: '=', NotEqual: '!=', In: '~', NotIn: '!~' }[r.operator];
    const target =
      r.prefixLength !== undefined ? `[ ${r.cidr}{${r.prefixLength[0]},${r.prefixLength[1]}} ]` : r.cidr;
    conds.push(`(net ${op} ${target})`);
  }
  if (r.source === 'RemotePeers') conds.push('((defined(source))&&(source ~ [ RTS_BGP ]))');
  if (r.interface !== undefined) conds.push(`((defined(ifname))&&(ifname ~ "${r.interface}"))`);
  const action = `${r.action};`;
  return conds.length > 0 ? `if (${conds.join('&&')}) then { ${action} }` : action;
}

function filterFunctions(fc: FamilyConfig): string[] {
  const out: string[] = [];
  const byFilter = new Map<string, FilterConfig[]>();
  for (const f of fc.filters) byFilter.set(f.filter, [...(byFilter.get(f.filter) ?? []), f]);
  if (byFilter.size === 0) return [`# No v${fc.family} BGPFilters configured`];
  for (const [name, fs] of byFilter) {
    out.push(`# v${fc.family} BGPFilter ${name}`);
    for (const f of fs) {
      out.push(`function '${f.functionName}'() {`);
      for (const r of f.rules) out.push(`  ${filterStatement(r)}`);
      out.push('}');
    }
  }
  return out;
}

function peerProtocol(p: PeerConfig, fc: FamilyConfig, opts: BirdOptions): string[] {
  const o: string[] = [`# For peer ${p.key}`, `protocol bgp ${p.name} from bgp_template {`];
  const neighbor = `  neighbor ${p.address} ${p.port !== undefined ? `port ${p.port} ` : ''}as ${p.asNumber};`;
  const src = `  source address ${fc.nodeAddress ?? ''};  # The local address we use for the TCP connection`;
  const fn = (name: string, dir: 'import' | 'export'): string =>
    `    '${fc.filters.find((f) => f.filter === name && f.direction === dir)?.functionName ?? name}'();`;
  const password = (): string[] =>
    p.password !== undefined
      ? [`  password "${opts.showSecrets === true ? p.password : '<redacted>'}";`]
      : [];
  if (p.type === 'node-to-node mesh') {
    o.push(neighbor);
    if (p.sourceAddress !== undefined) o.push(src);
    o.push(
      "  import all;        # Import all routes, since we don't know what the upstream",
      '                     # topology is and therefore have to trust the ToR/RR.',
      '  export filter {',
      '    calico_export_to_bgp_peers(true);',
      '    reject;',
      '  };  # Only want to export routes for workloads.',
    );
    if (p.passive) o.push('  passive on; # Mesh is unidirectional, peer will connect to us.');
    if (p.gracefulRestartTime !== undefined) o.push(`  graceful restart time ${p.gracefulRestartTime};`);
    o.push(...password(), '}');
    return o;
  }
  const ttl = p.multihop?.ttlSecurity;
  o.push(
    ...(ttl !== undefined
      ? ['  ttl security on;', `  multihop ${ttl};`]
      : ['  ttl security off;', '  multihop;']),
  );
  if (p.localAsOverride) o.push(`  local as ${p.localAsNumber};`);
  o.push(neighbor);
  if (p.sourceAddress !== undefined) o.push(src);
  o.push('  import filter {', ...p.importFilters.map((f) => fn(f, 'import')));
  o.push(
    '    accept; # Prior to introduction of BGP Filters we used "import all" so use default accept behaviour on import',
    '  };',
    '  export filter {',
    ...p.exportFilters.map((f) => fn(f, 'export')),
    `    calico_export_to_bgp_peers(${p.internal});`,
    '    reject;',
    '  };  # Only want to export routes for workloads.',
  );
  // The template's two passive lines: the higher-address Tabby node (global section), passiveMode.
  if (p.passive) o.push('  passive on; # Peering is unidirectional, peer will connect to us.');
  if (p.gracefulRestartTime !== undefined) o.push(`  graceful restart time ${p.gracefulRestartTime};`);
  if (p.rrClient !== undefined) o.push('  rr client;', `  rr cluster id ${p.rrClient.clusterId};`);
  o.push(...password());
  if (p.nextHop === 'self') o.push('  next hop self;');
  if (p.nextHop === 'keep') o.push('  next hop keep;');
  if (p.allowLocalAs !== undefined) o.push(`  allow local as ${p.allowLocalAs};`);
  o.push('}');
  return o;
}

function main(cfg: BgpConfig, fc: FamilyConfig, opts: BirdOptions): string {
  const s = sfx(fc.family);
  const L: string[] = ['function apply_communities ()', '{', ...communityStatements(fc), '}', ''];
  L.push('# Generated by confd', `include "bird${s}_aggr.cfg";`, `include "bird${s}_ipam.cfg";`, '');
  L.push(`router id ${cfg.routerId};`);
  if (fc.listenAddress !== undefined || cfg.listenPort !== undefined)
    L.push(
      `listen bgp${fc.listenAddress !== undefined ? ` address ${fc.listenAddress}` : ''}${cfg.listenPort !== undefined ? ` port ${cfg.listenPort}` : ''};`,
    );
  L.push(
    '',
    '# Configure synchronization between routing tables and kernel.',
    'protocol kernel {',
    '  learn;             # Learn all alien routes from the kernel',
    "  persist;           # Don't remove routes on bird shutdown",
    '  scan time 2;       # Scan kernel routing table every 2 seconds',
    '  import all;',
    '  export filter calico_kernel_programming; # Default is export none',
    '  graceful restart;  # Turn on graceful restart to reduce potential flaps in',
    '                     # routes when reloading BIRD configuration.',
    '  merge paths on;    # Allow export multipath routes (ECMP)',
    '}',
    '',
    '# Watch interface up/down events.',
    'protocol device {',
    ...logging(cfg),
    '  scan time 2;    # Scan interfaces every 2 seconds',
    '}',
    '',
    'protocol direct {',
    ...logging(cfg),
    `  interface ${cfg.ignoredInterfaces.map((i) => `-"${i}", `).join('')}-"cali*", -"kube-ipvs*", "*"; # Exclude cali* and kube-ipvs*`,
    '}',
    '',
  );
  if (fc.nodeAddress === undefined) {
    L.push(`# IPv${fc.family} disabled on this node.`, '');
    return L.join('\n');
  }
  L.push(
    '# Template for all BGP clients',
    'template bgp bgp_template {',
    ...logging(cfg),
    '  description "Connection to BGP peer";',
    `  local as ${cfg.asNumber};`,
    '  gateway recursive; # This should be the default, but just in case.',
    '  add paths on;',
    '  graceful restart;  # See comment in kernel section about graceful restart.',
    '  connect delay time 2;',
    '  connect retry time 5;',
    '  error wait time 5,30;',
    '}',
    '',
    '# -------------- BGP Filters ------------------',
    ...filterFunctions(fc),
    '',
    '# ------------- Node-to-node mesh -------------',
  );
  const of = (t: PeerConfig['type']): PeerConfig[] => fc.peers.filter((p) => p.type === t);
  if (cfg.routeReflectorClusterId !== undefined)
    L.push(
      `# This node (${cfg.node}) is configured as a route reflector with cluster ID ${cfg.routeReflectorClusterId};`,
      '# ignore node-to-node mesh setting.',
    );
  else if (!cfg.meshEnabled) L.push('# Node-to-node mesh disabled');
  for (const p of of('node-to-node mesh')) L.push('', ...peerProtocol(p, fc, opts));
  L.push('', '# ------------- Global peers -------------');
  const globals = of('global');
  if (globals.length === 0) L.push('# No global peers configured.');
  for (const p of globals) L.push('', ...peerProtocol(p, fc, opts));
  const locals = of('local workload');
  const globalLocals = locals.filter((p) => p.key.startsWith('/bgp/v1/global/'));
  if (globalLocals.length > 0) L.push('', '# ------------- Global local bgp peers -------------');
  for (const p of globalLocals) L.push('', ...peerProtocol(p, fc, opts));
  L.push('', '# ------------- Node-specific peers -------------');
  const nodes = of('node specific');
  if (nodes.length === 0) L.push('# No node-specific peers configured.');
  for (const p of nodes) L.push('', ...peerProtocol(p, fc, opts));
  const nodeLocals = locals.filter((p) => !p.key.startsWith('/bgp/v1/global/'));
  if (nodeLocals.length > 0) L.push('', '# ------------- Node-specific local BGP peers -------------');
  for (const p of nodeLocals) L.push('', ...peerProtocol(p, fc, opts));
  L.push('');
  return L.join('\n');
}

function aggr(fc: FamilyConfig): string {
  const full = fc.family === 4 ? '/32' : '/128';
  const L: string[] = ['# Generated by confd', 'protocol static {'];
  let added = false;
  if (fc.exports.blocks.length > 0) {
    added = true;
    L.push('   # IP blocks for this host.');
    for (const b of fc.exports.blocks) if (!b.cidr.endsWith(full)) L.push(`   route ${b.cidr} blackhole;`);
  }
  if (fc.exports.serviceRoutes.length > 0) {
    added = true;
    L.push('   # Static routes.');
    for (const r of fc.exports.serviceRoutes) L.push(`   route ${r} blackhole;`);
  }
  for (const [global, title] of [
    [true, 'global'],
    [false, 'node specific'],
  ] as const) {
    const rb = fc.peers.filter(
      (p) => p.reachableBy !== undefined && p.key.startsWith('/bgp/v1/global/') === global,
    );
    if (rb.length > 0) {
      added = true;
      L.push(`   # Static routes needed for ${title} BGP peers.`);
      for (const p of rb) L.push(`   route ${p.address}${full} via ${p.reachableBy};`);
    }
  }
  if (!added) L.push('   # No IP blocks or static routes for this host.');
  L.push(
    '}',
    '',
    '# Aggregation of routes on this host; export the block, nothing beneath it.',
    'function calico_aggr ()',
    '{',
  );
  for (const b of fc.exports.blocks) {
    if (b.state !== undefined) L.push(`      # Block ${b.cidr} is ${b.state}`);
    else L.push(`      # Block ${b.cidr} is implicitly confirmed.`);
    if (b.state === undefined || b.state === 'confirmed')
      L.push(
        `      if ( net = ${b.cidr} ) then { accept; }`,
        `      if ( net ~ ${b.cidr} ) then { reject; }`,
      );
  }
  L.push('}', '');
  return L.join('\n');
}

function ipam(fc: FamilyConfig): string {
  const ex = fc.exports;
  const L: string[] = ['# Generated by confd', 'function reject_disabled_pools ()', '{'];
  for (const p of ex.pools) if (p.disableBGPExport) L.push(`  if ( net ~ ${p.cidr} ) then { reject; }`);
  L.push(
    '}',
    '',
    'function reject_tunnel_routes () {',
    "  # Don't export tunnel routes to other nodes, Felix programs them.",
    '  if (defined(ifname)) then {',
    '     if ((ifname ~ "*.cali") || (ifname ~ "*.calico")) then {',
    '        reject;',
    '     }',
    '  }',
    '}',
    '',
    'function reject_local_routes () {',
    "  # Don't export local routes learned via BPF as they should never leave the node.",
    '  if (defined(ifname)) then {',
    '     if (ifname ~ "bpf*.cali") then {',
    '        reject;',
    '     }',
    '  }',
    '}',
    '',
    'function calico_export_to_bgp_peers(bool internal_peer) {',
    '  reject_disabled_pools();',
    '  if (internal_peer) then {',
    '    reject_tunnel_routes();',
    '  }',
    '  reject_local_routes();',
    '  apply_communities();',
    '  calico_aggr();',
  );
  if (ex.serviceRoutes.length > 0) {
    L.push('', '  # Export static routes.');
    for (const r of ex.serviceRoutes) L.push(`  if ( net ~ ${r} ) then { accept; }`);
  }
  if (ex.reflectedLoadBalancerCidrs.length > 0) {
    L.push('', '  # Configured as a RR - accept any routes within configured LB service IP ranges');
    for (const c of ex.reflectedLoadBalancerCidrs) L.push(`  if ( net ~ ${c} ) then { accept; }`);
  }
  for (const p of ex.pools)
    if (p.disableBGPExport) L.push(`  # Skip ${p.cidr} as BGP export is disabled for it`);
    else L.push(`  if ( net ~ ${p.cidr} ) then {`, '    accept;', '  }');
  L.push('}', '', 'filter calico_kernel_programming {');
  if (ex.kernelRejects.length > 0) {
    L.push('', "  # Don't program static routes into kernel.");
    for (const c of ex.kernelRejects) L.push(`  if ( net ~ ${c} ) then { reject; }`);
  }
  // IPv4: only once the node's subnet is known (the template's `exists $network_key`).
  const pools = fc.family === 4 && fc.nodeNetwork === undefined ? [] : ex.pools;
  for (const p of pools) {
    if (p.vxlanMode !== 'Never') {
      L.push(
        `  if ( net ~ ${p.cidr} ) then {`,
        "    # Don't program VXLAN routes into the kernel - these are handled by Felix.",
        '    reject;',
        '  }',
      );
      continue;
    }
    if (fc.family === 6) continue;
    const tunnel = p.ipipMode !== 'Never' ? 'tunl0' : '';
    L.push(`  if ( net ~ ${p.cidr} ) then {`);
    if (p.ipipMode === 'CrossSubnet')
      L.push(
        `    if defined(bgp_next_hop) && ( bgp_next_hop ~ ${fc.nodeNetwork} ) then`,
        '      krt_tunnel = "";',
        '    else',
        `      krt_tunnel = "${tunnel}";`,
      );
    else L.push(`    krt_tunnel = "${tunnel}";`);
    L.push('    accept;', '  }');
  }
  L.push('  accept;', '}', '');
  return L.join('\n');
}
