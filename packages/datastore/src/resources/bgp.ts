// BGPConfiguration, BGPPeer and BGPFilter: Calico v3.31.7's field names and its validator's
// rules (libcalico-go lib/validator/v3: validateBGPConfigurationSpec, validateBGPPeerSpec,
// validateBGPFilterRule), with messages that name the field.
import type { CrossFieldRule, Issue } from '../schema/index.js';
import { parseCidr, parseIp, parseIpPort, s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';
import { asNumber, checkAsNumber } from './node.js';

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

/** `a` and `b` (optional strings) cannot both be non-empty: a CEL rule and the same check here. */
function bothSetRule(a: string, b: string): CrossFieldRule {
  const filled = (v: unknown): boolean => typeof v === 'string' && v !== '';
  return {
    rule: `!has(self.${a}) || size(self.${a}) == 0 || !has(self.${b}) || size(self.${b}) == 0`,
    message: `${a} and ${b} cannot both be set`,
    check: (o) => (filled(o[a]) && filled(o[b]) ? b : undefined),
  };
}

const secretPassword = (what: string) =>
  s.object(
    {
      secretKeyRef: s.optional(
        s.object(
          {
            name: s.optional(s.string({ description: 'The Secret, in the namespace tabby-node runs in.' }), {
              default: '',
            }),
            key: s.string({ description: 'The key in the Secret holding the password.' }),
            optional: s.optional(
              s.bool({ description: 'Peer without a password if the Secret or key is missing.' }),
            ),
          },
          { description: "Selects a key of a Secret in the node pod's namespace." },
        ),
      ),
    },
    { description: `TCP-MD5 (RFC 2385) password for ${what}.` },
  );

const cidrBlock = (what: string) =>
  s.array(
    s.object({
      cidr: s.optional(s.string({ format: 'cidr', description: 'A range to advertise, e.g. 10.96.0.0/12.' })),
    }),
    { description: what },
  );

export const bgpConfigurationSpec = s.object({
  logSeverityScreen: s.optional(
    s.string({
      description: 'Log level of the BGP daemon: Trace, Debug, Info, Warning, Error, Fatal. [Default: Info]',
    }),
  ),
  nodeToNodeMeshEnabled: s.optional(s.bool({ description: 'Full node-to-node BGP mesh. [Default: true]' })),
  asNumber: s.optional(asNumber('The default AS of nodes that set none. [Default: 64512]')),
  serviceLoadBalancerIPs: s.optional(cidrBlock('CIDRs of LoadBalancer service IPs to advertise.')),
  serviceExternalIPs: s.optional(cidrBlock('CIDRs of service external IPs to advertise.')),
  serviceClusterIPs: s.optional(cidrBlock('CIDRs of service cluster IPs to advertise.')),
  serviceLoadBalancerAggregation: s.optional(
    s.enum(['Enabled', 'Disabled'], {
      description:
        'Enabled: advertise LoadBalancer CIDRs as configured; Disabled: each service IP as a /32 or /128. [Default: Enabled]',
    }),
  ),
  communities: s.optional(
    s.array(
      s.object({
        name: s.string({ description: 'A name for use in prefixAdvertisements.' }),
        value: s.string({
          pattern: '^(\\d+):(\\d+)$|^(\\d+):(\\d+):(\\d+)$',
          description: 'aa:nn (standard, RFC 1997) or aa:nn:mm (large, RFC 8092).',
        }),
      }),
      { description: 'Named community values.' },
    ),
  ),
  prefixAdvertisements: s.optional(
    s.array(
      s.object({
        cidr: s.string({ format: 'cidr', description: 'The prefix (or any route within it) to tag.' }),
        communities: s.array(s.string(), { description: 'Community names (from communities) or values.' }),
      }),
      { description: 'Communities to attach to routes within a CIDR.' },
    ),
  ),
  listenPort: s.optional(
    s.int({ minimum: 1, maximum: 65535, description: 'BGP listen port. [Default: 179]' }),
  ),
  nodeMeshPassword: s.optional(secretPassword('node-to-node mesh sessions (default BGPConfiguration only)')),
  nodeMeshMaxRestartTime: s.optional(
    s.string({ format: 'duration', description: 'Graceful restart time for mesh sessions. [Default: 120s]' }),
  ),
  bindMode: s.optional(
    s.enum(['None', 'NodeIP'], {
      description: "None: listen on all addresses; NodeIP: only on the node's BGP address. [Default: None]",
    }),
  ),
  ignoredInterfaces: s.optional(
    s.array(s.string(), { description: 'Interfaces (globs) whose device routes are not exported.' }),
  ),
  localWorkloadPeeringIPV4: s.optional(
    s.string({
      format: 'ipv4',
      description: 'The node address local workloads peer with (BGPPeer localWorkloadSelector).',
    }),
  ),
  localWorkloadPeeringIPV6: s.optional(
    s.string({ format: 'ipv6', description: 'As localWorkloadPeeringIPV4, IPv6.' }),
  ),
});
export type BGPConfigurationSpec = Infer<typeof bgpConfigurationSpec>;
export type BGPConfiguration = Resource<'BGPConfiguration', BGPConfigurationSpec>;

/** Standard `aa:nn` (16-bit parts) or large `aa:nn:mm` (32-bit parts). */
export function isCommunityValue(v: string): boolean {
  const parts = v.split(':');
  if (parts.length !== 2 && parts.length !== 3) return false;
  const max = parts.length === 2 ? 0xffff : 0xffffffff;
  return parts.every((p) => /^\d{1,10}$/.test(p) && Number(p) <= max);
}

function validateConfiguration(r: BGPConfiguration): Issue[] {
  const out: Issue[] = [];
  const c = r.spec;
  const name = r.metadata.name;
  if (name !== 'default' && !name.startsWith('node.'))
    out.push({
      path: 'metadata.name',
      reason: 'must be "default" (cluster-wide) or "node.<node name>" (one node)',
    });
  out.push(...checkAsNumber(c.asNumber, 'spec.asNumber'));
  if (
    c.logSeverityScreen !== undefined &&
    !/^(trace|debug|info|warning|error|fatal)?$/i.test(c.logSeverityScreen)
  )
    out.push({
      path: 'spec.logSeverityScreen',
      reason: 'must be Trace, Debug, Info, Warning, Error or Fatal',
    });
  const names = new Set<string>();
  (c.communities ?? []).forEach((m, i) => {
    if (!isCommunityValue(m.value))
      out.push({
        path: `spec.communities[${i}].value`,
        reason: `${JSON.stringify(m.value)} is not a community (aa:nn with parts up to 65535, or aa:nn:mm up to 4294967295)`,
      });
    names.add(m.name);
  });
  if ((c.communities?.length ?? 0) > 0 && (c.prefixAdvertisements?.length ?? 0) === 0)
    out.push({
      path: 'spec.communities',
      reason: 'communities are defined but no prefixAdvertisements use them',
    });
  (c.prefixAdvertisements ?? []).forEach((pa, i) =>
    pa.communities.forEach((v, j) => {
      if (!isCommunityValue(v) && !names.has(v))
        out.push({
          path: `spec.prefixAdvertisements[${i}].communities[${j}]`,
          reason: `${JSON.stringify(v)} is neither a community value nor a name defined in spec.communities`,
        });
    }),
  );
  const meshOff = c.nodeToNodeMeshEnabled === false;
  if (meshOff && c.nodeMeshPassword !== undefined)
    out.push({ path: 'spec.nodeMeshPassword', reason: 'cannot be set when nodeToNodeMeshEnabled is false' });
  if (meshOff && c.nodeMeshMaxRestartTime !== undefined)
    out.push({
      path: 'spec.nodeMeshMaxRestartTime',
      reason: 'cannot be set when nodeToNodeMeshEnabled is false',
    });
  if (name !== 'default' && c.nodeMeshPassword !== undefined)
    out.push({ path: 'spec.nodeMeshPassword', reason: 'can only be set on the "default" BGPConfiguration' });
  return out;
}

export const BGPConfigurationKind = defineKind({
  kind: 'BGPConfiguration',
  description: 'Cluster-wide ("default") or per-node ("node.<name>") BGP settings.',
  spec: bgpConfigurationSpec,
  validate: validateConfiguration,
  checks: [
    '`metadata.name` is `default` (cluster-wide) or `node.<node name>` (one node).',
    '`asNumber` is 1-4294967295 (or asdot).',
    '`logSeverityScreen` is Trace, Debug, Info, Warning, Error or Fatal (any case).',
    '`communities[].value` is `aa:nn` with parts up to 65535 or `aa:nn:mm` with parts up to 4294967295.',
    '`communities` are used only with `prefixAdvertisements`; each `prefixAdvertisements[].communities[]` entry is a community value or a name from `communities`.',
    '`nodeMeshPassword` and `nodeMeshMaxRestartTime` only with the mesh on; `nodeMeshPassword` only on `default`.',
  ],
  columns: [
    { name: 'Mesh', jsonPath: '.spec.nodeToNodeMeshEnabled', type: 'boolean' },
    { name: 'AS', jsonPath: '.spec.asNumber', type: 'string' },
  ],
});

export const bgpPeerSpec = s.object(
  {
    node: s.optional(
      s.string({ description: 'The one node this peering is for; absent (and no nodeSelector): all nodes.' }),
    ),
    nodeSelector: s.optional(
      s.string({ format: 'selector', description: 'The nodes this peering is for. Not with node.' }),
    ),
    peerIP: s.optional(
      s.string({
        format: 'ipPort',
        description: 'The peer address, with an optional port: 10.0.0.1, 10.0.0.1:1790, [fd00::1]:1790.',
      }),
    ),
    asNumber: s.optional(asNumber("The peer's AS. Not with peerSelector (the selected nodes' AS is used).")),
    localASNumber: s.optional(
      asNumber("The AS this node uses towards this peer (local-as); absent: the node's AS."),
    ),
    peerSelector: s.optional(
      s.string({
        format: 'selector',
        description: 'Peer with the Tabby nodes this selects. Not with peerIP.',
      }),
    ),
    keepOriginalNextHop: s.optional(
      s.bool({ description: 'Deprecated: use nextHopMode Keep. Cannot be true with nextHopMode.' }),
    ),
    nextHopMode: s.optional(
      s.enum(['Auto', 'Self', 'Keep'], {
        description: 'Next hop of routes sent to this peer. [Default: Auto]',
      }),
    ),
    password: s.optional(secretPassword('sessions of this peering')),
    sourceAddress: s.optional(
      s.enum(['UseNodeIP', 'None'], {
        description:
          "UseNodeIP: source sessions from the node's BGP address; None: let the kernel choose. [Default: UseNodeIP]",
      }),
    ),
    maxRestartTime: s.optional(
      s.string({ format: 'duration', description: 'Graceful restart time. [Default: 120s]' }),
    ),
    numAllowedLocalASNumbers: s.optional(
      s.int({
        minimum: 0,
        maximum: 2147483647,
        description: 'Accept routes with our AS this many times in AS_PATH (allowas-in).',
      }),
    ),
    ttlSecurity: s.optional(
      s.int({
        minimum: 0,
        maximum: 255,
        description: 'GTSM (RFC 5082): the peer is at most this many hops away.',
      }),
    ),
    reachableBy: s.optional(
      s.string({
        format: 'ip',
        description: 'Gateway to reach peerIP through (a static /32 or /128 route).',
      }),
    ),
    filters: s.optional(s.array(s.string(), { description: 'BGPFilter names, applied in order.' })),
    localWorkloadSelector: s.optional(
      s.string({
        format: 'selector',
        description: 'Peer with the local workloads this selects (needs asNumber).',
      }),
    ),
    reversePeering: s.optional(
      s.enum(['Auto', 'Manual'], {
        description:
          'Between Tabby nodes: Auto also creates the reverse session; Manual needs a BGPPeer for it. [Default: Auto]',
      }),
    ),
    keepaliveTime: s.optional(
      s.string({
        format: 'duration',
        description: 'Keepalive interval (hold time is three times it). [Default: 20s]',
      }),
    ),
  },
  { rules: [bothSetRule('node', 'nodeSelector'), bothSetRule('peerIP', 'peerSelector')] },
);
export type BGPPeerSpec = Infer<typeof bgpPeerSpec>;
export type BGPPeer = Resource<'BGPPeer', BGPPeerSpec>;

function validatePeer(r: BGPPeer): Issue[] {
  const p = r.spec;
  const out: Issue[] = [
    ...checkAsNumber(p.asNumber, 'spec.asNumber'),
    ...checkAsNumber(p.localASNumber, 'spec.localASNumber'),
  ];
  if (p.asNumber !== undefined && p.asNumber !== 0 && set(p.peerSelector))
    out.push({
      path: 'spec.asNumber',
      reason: "must be empty with peerSelector (the selected nodes' AS is used)",
    });
  if (set(p.localWorkloadSelector)) {
    if (p.asNumber === undefined || p.asNumber === 0)
      out.push({ path: 'spec.asNumber', reason: 'is required with localWorkloadSelector' });
    if (set(p.peerIP)) out.push({ path: 'spec.peerIP', reason: 'must be empty with localWorkloadSelector' });
    if (set(p.peerSelector))
      out.push({ path: 'spec.peerSelector', reason: 'must be empty with localWorkloadSelector' });
  }
  if (!set(p.peerIP) && !set(p.peerSelector) && !set(p.localWorkloadSelector))
    out.push({ path: 'spec', reason: 'names no peer: set peerIP, peerSelector or localWorkloadSelector' });
  // peerIP without asNumber is valid: when the address is a Tabby node's, its AS is used
  // (Calico's route reflectors by IP); the daemon reports a peer it cannot resolve.
  if (set(p.reachableBy)) {
    const peer = set(p.peerIP) ? parseIpPort(p.peerIP) : undefined;
    const via = parseIp(p.reachableBy);
    if (peer === undefined) out.push({ path: 'spec.reachableBy', reason: 'needs peerIP' });
    else if (via !== undefined && parseIp(peer.ip)?.family !== via.family)
      out.push({ path: 'spec.reachableBy', reason: 'must be of the same address family as peerIP' });
  }
  if (p.keepOriginalNextHop === true && p.nextHopMode !== undefined)
    out.push({
      path: 'spec.keepOriginalNextHop',
      reason: 'is deprecated and cannot be true when nextHopMode is set (use nextHopMode: Keep)',
    });
  return out;
}

export const BGPPeerKind = defineKind({
  kind: 'BGPPeer',
  description:
    'A BGP peering for some or all nodes: to an address (a ToR, a reflector) or to selected Tabby nodes.',
  spec: bgpPeerSpec,
  validate: validatePeer,
  checks: [
    '`asNumber` and `localASNumber` are 1-4294967295 (or asdot).',
    'One of `peerIP`, `peerSelector` or `localWorkloadSelector` is set.',
    "`asNumber` is empty with `peerSelector` (the selected nodes' AS is used); without `asNumber`, a `peerIP` that is a Tabby node's address takes that node's AS.",
    '`localWorkloadSelector` needs `asNumber`, and no `peerIP` or `peerSelector`.',
    '`reachableBy` needs `peerIP`, of the same address family.',
    '`keepOriginalNextHop: true` is refused with `nextHopMode`.',
  ],
  columns: [
    { name: 'PeerIP', jsonPath: '.spec.peerIP', type: 'string' },
    { name: 'AS', jsonPath: '.spec.asNumber', type: 'string' },
    { name: 'Node', jsonPath: '.spec.node', type: 'string' },
  ],
});

const filterRule = (family: 4 | 6) =>
  s.object(
    {
      action: s.enum(['Accept', 'Reject'], { description: 'What to do with a matching route.' }),
      cidr: s.optional(
        s.string({ format: 'cidr', description: `IPv${family} prefix the route is compared with.` }),
      ),
      matchOperator: s.optional(
        s.enum(['Equal', 'NotEqual', 'In', 'NotIn'], {
          description: 'Equal: exactly cidr; In: within cidr; NotEqual / NotIn: the opposite.',
        }),
      ),
      prefixLength: s.optional(
        s.object(
          {
            min: s.optional(
              s.int({
                minimum: 0,
                maximum: family === 4 ? 32 : 128,
                description: 'Shortest prefix length that matches.',
              }),
            ),
            max: s.optional(
              s.int({
                minimum: 0,
                maximum: family === 4 ? 32 : 128,
                description: 'Longest prefix length that matches.',
              }),
            ),
          },
          { description: "With In/NotIn: the route's prefix length must be in [min, max]." },
        ),
      ),
      source: s.optional(
        s.enum(['RemotePeers'], { description: "Only routes learned from BGP peers (not this node's own)." }),
      ),
      interface: s.optional(
        s.string({
          pattern: '^[a-zA-Z0-9_.*+-]{1,15}$',
          description: 'Only routes out of this interface (glob).',
        }),
      ),
    },
    {
      rules: [
        {
          rule: '(has(self.cidr) && size(self.cidr) > 0) == has(self.matchOperator)',
          message: 'cidr and matchOperator must both be set or both be empty',
          check: (o) =>
            (typeof o['cidr'] === 'string' && o['cidr'] !== '') === (o['matchOperator'] !== undefined)
              ? undefined
              : o['matchOperator'] === undefined
                ? 'matchOperator'
                : 'cidr',
        },
        {
          rule: '!has(self.prefixLength) || (has(self.cidr) && size(self.cidr) > 0)',
          message: 'cidr is required when prefixLength is set',
          check: (o) =>
            o['prefixLength'] === undefined || (typeof o['cidr'] === 'string' && o['cidr'] !== '')
              ? undefined
              : 'cidr',
        },
      ],
    },
  );

export const bgpFilterSpec = s.object({
  exportV4: s.optional(
    s.array(filterRule(4), { description: 'IPv4 rules for routes sent to the peer, in order.' }),
  ),
  importV4: s.optional(
    s.array(filterRule(4), { description: 'IPv4 rules for routes learned from the peer, in order.' }),
  ),
  exportV6: s.optional(
    s.array(filterRule(6), { description: 'IPv6 rules for routes sent to the peer, in order.' }),
  ),
  importV6: s.optional(
    s.array(filterRule(6), { description: 'IPv6 rules for routes learned from the peer, in order.' }),
  ),
});
export type BGPFilterSpec = Infer<typeof bgpFilterSpec>;
export type BGPFilter = Resource<'BGPFilter', BGPFilterSpec>;
export type BGPFilterRule = NonNullable<BGPFilterSpec['exportV4']>[number];

function validateFilter(r: BGPFilter): Issue[] {
  const out: Issue[] = [];
  for (const [list, family] of [
    ['exportV4', 4],
    ['importV4', 4],
    ['exportV6', 6],
    ['importV6', 6],
  ] as const) {
    (r.spec[list] ?? []).forEach((rule, i) => {
      const at = `spec.${list}[${i}]`;
      const c = rule.cidr === undefined || rule.cidr === '' ? undefined : parseCidr(rule.cidr);
      if (c !== undefined && c.family !== family)
        out.push({ path: `${at}.cidr`, reason: `must be an IPv${family} CIDR in ${list}` });
      const { min, max } = rule.prefixLength ?? {};
      if (min !== undefined && max !== undefined && min > max)
        out.push({ path: `${at}.prefixLength`, reason: `min (${min}) is greater than max (${max})` });
      if (c !== undefined && min !== undefined && min < c.len)
        out.push({
          path: `${at}.prefixLength.min`,
          reason: `is shorter than the cidr's own length (/${c.len})`,
        });
    });
  }
  return out;
}

export const BGPFilterKind = defineKind({
  kind: 'BGPFilter',
  description: 'Ordered import and export rules for the peers that list this filter.',
  spec: bgpFilterSpec,
  validate: validateFilter,
  checks: [
    "A rule's `cidr` is of the list's family (IPv4 in `exportV4`/`importV4`, IPv6 in the others).",
    "`prefixLength.min` is at most `prefixLength.max`, and not shorter than the `cidr`'s own length.",
  ],
});
