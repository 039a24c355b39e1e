// A BgpConfig as bgp-ts speaker settings: the same sessions, filters and exports BIRD would run
// from Calico's configuration (../bgpconfig/render/bird.ts writes that configuration; this is
// its meaning for our speaker). Pure, so a test can check that what the daemon opens is what
// computeBgpConfig says.
//
// Calico's export filter (bird_ipam.cfg calico_export_to_bgp_peers), in order, for every route
// a peer may get: the peer's BGPFilter export rules; reject inside disabled pools; add the
// communities of prefixAdvertisements; this node's confirmed blocks exactly: accept, anything
// inside them: reject (export the aggregate, nothing beneath); service routes, a reflector's
// LoadBalancer ranges and routes inside any other pool: accept; everything else: reject.
import type { Condition, Policy, Rule } from 'bgp-ts/policy';
import type { Family as SpeakerFamily, Origination, PeerSettings, SpeakerConfig } from 'bgp-ts/speaker';
import type { Asn } from 'bgp-ts/wire';
import type {
  BgpConfig,
  FamilyConfig,
  FilterConfig,
  FilterRuleConfig,
  PeerConfig,
} from '../bgpconfig/model.js';

/** BIRD's default graceful restart time (Calico's template turns graceful restart on for all). */
export const DEFAULT_RESTART_TIME = 120;
/** Calico's template: `connect retry time 5`. */
export const CONNECT_RETRY_TIME = 5;

const maxLen = (cidr: string): number => (cidr.includes(':') ? 128 : 32);
const lenOf = (cidr: string): number => Number(cidr.slice(cidr.indexOf('/') + 1));
/** BIRD's `net ~ cidr`: the prefix itself or any more specific one. */
const within = (cidr: string): Condition => ({
  prefix: [{ prefix: cidr, ge: lenOf(cidr), le: maxLen(cidr) }],
});
/** BIRD's `net = cidr`. */
const exactly = (cidr: string): Condition => ({ prefix: [{ prefix: cidr }] });

/** One BGPFilter rule (template_funcs.go filterStatement) as a policy rule. */
export function filterRuleToPolicy(f: FilterConfig, r: FilterRuleConfig, index: number): Rule {
  const match: Condition[] = [];
  if (r.cidr !== undefined && r.operator !== undefined) {
    const [ge, le] = r.prefixLength ?? [
      lenOf(r.cidr),
      r.operator === 'Equal' || r.operator === 'NotEqual' ? lenOf(r.cidr) : maxLen(r.cidr),
    ];
    // Equal with a prefixLength is BIRD's `net = [ cidr{a,b} ]`: a prefix-set match, like In.
    const cond: Condition =
      r.prefixLength === undefined && (r.operator === 'Equal' || r.operator === 'NotEqual')
        ? exactly(r.cidr)
        : { prefix: [{ prefix: r.cidr, ge, le }] };
    match.push(r.operator === 'NotEqual' || r.operator === 'NotIn' ? { not: cond } : cond);
  }
  if (r.source === 'RemotePeers') match.push({ learned: true });
  return { name: `${f.filter} ${f.direction} rule ${index}`, match, then: { verdict: r.action } };
}

/**
 * BIRD matches `interface` against the interface of kernel and device routes; our speaker
 * holds only BGP routes and its own originations, which have none, so a rule naming an
 * interface never matches and is left out (docs/migrating-from-calico.md).
 */
const canMatch = (r: FilterRuleConfig): boolean => r.interface === undefined;

function filterRules(fc: FamilyConfig, names: readonly string[], direction: 'import' | 'export'): Rule[] {
  const out: Rule[] = [];
  for (const n of names) {
    const f = fc.filters.find((x) => x.filter === n && x.direction === direction);
    if (f !== undefined)
      f.rules.forEach((r, i) => {
        if (canMatch(r)) out.push(filterRuleToPolicy(f, r, i));
      });
  }
  return out;
}

/** calico_export_to_bgp_peers, after the peer's own export filters. */
export function calicoExportRules(fc: FamilyConfig): Rule[] {
  const ex = fc.exports;
  const rules: Rule[] = [];
  for (const p of ex.pools)
    if (p.disableBGPExport)
      rules.push({
        name: `pool ${p.cidr} not exported`,
        match: [within(p.cidr)],
        then: { verdict: 'reject' },
      });
  for (const a of ex.prefixAdvertisements) {
    const std = a.communities.filter((c) => c.split(':').length === 2);
    const large = a.communities.filter((c) => c.split(':').length === 3);
    rules.push({
      name: `communities for ${a.cidr}`,
      match: [within(a.cidr)],
      then: {
        ...(std.length > 0 ? { addCommunities: std } : {}),
        ...(large.length > 0 ? { addLargeCommunities: large } : {}),
      },
    });
  }
  for (const b of ex.blocks)
    if (b.state === undefined || b.state === 'confirmed')
      rules.push(
        { name: `block ${b.cidr}`, match: [exactly(b.cidr)], then: { verdict: 'accept' } },
        { name: `inside block ${b.cidr}`, match: [within(b.cidr)], then: { verdict: 'reject' } },
      );
  for (const r of ex.serviceRoutes)
    rules.push({ name: `service route ${r}`, match: [within(r)], then: { verdict: 'accept' } });
  for (const c of ex.reflectedLoadBalancerCidrs)
    rules.push({ name: `LoadBalancer range ${c}`, match: [within(c)], then: { verdict: 'accept' } });
  for (const p of ex.pools)
    if (!p.disableBGPExport)
      rules.push({ name: `pool ${p.cidr}`, match: [within(p.cidr)], then: { verdict: 'accept' } });
  return rules;
}

export function peerSettings(p: PeerConfig, fc: FamilyConfig): PeerSettings {
  const family: SpeakerFamily = fc.family === 4 ? 'ipv4-unicast' : 'ipv6-unicast';
  const importPolicy: Policy = { rules: filterRules(fc, p.importFilters, 'import'), default: 'accept' };
  const exportPolicy: Policy = {
    rules: [...filterRules(fc, p.exportFilters, 'export'), ...calicoExportRules(fc)],
    default: 'reject',
  };
  return {
    name: p.name,
    address: p.address,
    ...(p.port !== undefined ? { port: p.port } : {}),
    asn: p.asNumber as Asn,
    ...(p.localAsOverride ? { localAsn: p.localAsNumber as Asn } : {}),
    ...(p.sourceAddress !== undefined ? { localAddress: p.sourceAddress } : {}),
    passive: p.passive,
    ...(p.keepaliveTime !== undefined
      ? { keepaliveTime: p.keepaliveTime, holdTime: p.keepaliveTime * 3 }
      : {}),
    connectRetryTime: CONNECT_RETRY_TIME,
    families: [family],
    reflectorClient: p.rrClient !== undefined,
    nextHop: p.nextHop,
    ...(p.allowLocalAs !== undefined ? { allowAsIn: p.allowLocalAs } : {}),
    importPolicy,
    exportPolicy,
    addPath: p.addPath,
    ...(p.password !== undefined ? { password: p.password } : {}),
    gracefulRestart: { restartTime: p.gracefulRestartTime ?? DEFAULT_RESTART_TIME },
    ...(p.multihop?.ttlSecurity !== undefined ? { ttlSecurity: p.multihop.ttlSecurity } : {}),
  };
}

/** The routes this node originates from its configuration: its blocks (not /32 or /128) and service routes. */
export function originations(cfg: BgpConfig): Origination[] {
  const out: Origination[] = [];
  for (const fc of [cfg.ipv4, cfg.ipv6]) {
    if (fc.nodeAddress === undefined) continue;
    for (const b of fc.exports.blocks) if (lenOf(b.cidr) !== maxLen(b.cidr)) out.push({ prefix: b.cidr });
    for (const r of fc.exports.serviceRoutes) out.push({ prefix: r });
  }
  return out;
}

export interface SpeakerOptions {
  /** Listen host when bindMode is not NodeIP ('::' takes IPv4 too on Linux). */
  readonly listenHost?: string;
  /** Routes the daemon originates beyond the configuration's (borrowed /32s of local pods). */
  readonly extraOriginations?: readonly Origination[];
}

export function speakerConfigFor(cfg: BgpConfig, opts: SpeakerOptions = {}): SpeakerConfig {
  const peers: PeerSettings[] = [];
  for (const fc of [cfg.ipv4, cfg.ipv6]) for (const p of fc.peers) peers.push(peerSettings(p, fc));
  return {
    routerId: cfg.routerId,
    localAsn: cfg.asNumber as Asn,
    ...(cfg.routeReflectorClusterId !== undefined ? { clusterId: cfg.routeReflectorClusterId } : {}),
    listen: {
      host: cfg.ipv4.listenAddress ?? cfg.ipv6.listenAddress ?? opts.listenHost ?? '::',
      port: cfg.listenPort ?? 179,
    },
    peers,
    originate: [...originations(cfg), ...(opts.extraOriginations ?? [])],
  };
}
