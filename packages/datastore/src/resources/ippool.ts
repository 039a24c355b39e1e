// IPPool: Calico's field names, defaults and checks (libcalico-go validator
// validateIPPoolSpec, v3.31.7), plus the deprecated v1 fields Calico still reads
// (`ipip`, `nat-outgoing`) refused with a message pointing at their replacements.
import type { Issue } from '../schema/index.js';
import { cidrsOverlap, formatCidr, parseCidr, s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';

const enabled = (m: unknown): boolean => m === 'Always' || m === 'CrossSubnet';

export const IPIP_MODES = ['Never', 'Always', 'CrossSubnet'] as const;
export type EncapMode = (typeof IPIP_MODES)[number];

export const ipPoolSpec = s.object(
  {
    cidr: s.string({
      format: 'cidr',
      description: 'The pool CIDR, a network address (no host bits). Cannot be changed once in use.',
    }),
    blockSize: s.optional(
      s.int({
        minimum: 0,
        maximum: 128,
        description:
          'Prefix length of the blocks nodes claim from this pool. [Default: 26 for IPv4 (20-32), 122 for IPv6 (116-128)]',
      }),
    ),
    ipipMode: s.optional(
      s.enum(IPIP_MODES, {
        description:
          'IPIP encapsulation between nodes: Never, Always, or CrossSubnet (only across subnets). IPv4 only. [Default: Never]',
      }),
      { default: 'Never' },
    ),
    vxlanMode: s.optional(
      s.enum(IPIP_MODES, {
        description: 'VXLAN encapsulation between nodes: Never, Always, or CrossSubnet. [Default: Never]',
      }),
      { default: 'Never' },
    ),
    natOutgoing: s.optional(
      s.bool({
        description: 'Masquerade traffic from this pool to destinations outside all pools. [Default: false]',
      }),
      { default: false },
    ),
    disabled: s.optional(
      s.bool({ description: 'Assign no new addresses from this pool. [Default: false]' }),
      {
        default: false,
      },
    ),
    disableBGPExport: s.optional(
      s.bool({ description: "Do not export this pool's routes over BGP. [Default: false]" }),
      { default: false },
    ),
    nodeSelector: s.optional(
      s.string({
        format: 'selector',
        description: 'Nodes that may claim blocks from this pool. [Default: all()]',
      }),
      { default: 'all()' },
    ),
    namespaceSelector: s.optional(
      s.string({
        format: 'selector',
        description: 'Namespaces whose pods may take addresses from this pool (both selectors must match).',
      }),
    ),
    allowedUses: s.optional(
      s.array(s.enum(['Workload', 'Tunnel', 'LoadBalancer']), {
        description: 'What addresses from this pool are for. [Default: ["Workload", "Tunnel"]]',
      }),
      { default: ['Workload', 'Tunnel'] },
    ),
    assignmentMode: s.optional(
      s.enum(['Automatic', 'Manual'], {
        description:
          'Automatic: IPAM picks from this pool; Manual: only explicit requests. [Default: Automatic]',
      }),
      { default: 'Automatic' },
    ),
  },
  {
    rules: [
      {
        rule: "!has(self.ipipMode) || !has(self.vxlanMode) || self.ipipMode == 'Never' || self.vxlanMode == 'Never'",
        message: 'ipipMode and vxlanMode cannot both be enabled',
        check: (o) => (enabled(o['ipipMode']) && enabled(o['vxlanMode']) ? 'vxlanMode' : undefined),
      },
    ],
  },
);
export type IPPoolSpec = Infer<typeof ipPoolSpec>;
export type IPPool = Resource<'IPPool', IPPoolSpec>;

const LINK_LOCAL = { 4: parseCidr('169.254.0.0/16')!, 6: parseCidr('fe80::/10')! } as const;

export function defaultBlockSize(family: 4 | 6): number {
  return family === 4 ? 26 : 122;
}

function validatePool(r: IPPool): Issue[] {
  const out: Issue[] = [];
  const p = r.spec;
  const c = parseCidr(p.cidr);
  if (c === undefined) return out;
  if (c.hostBits)
    out.push({ path: 'spec.cidr', reason: `${p.cidr} has host bits set; the network is ${formatCidr(c)}` });
  const ll = LINK_LOCAL[c.family];
  if (cidrsOverlap(c, ll))
    out.push({ path: 'spec.cidr', reason: `overlaps the link-local range ${formatCidr(ll)}` });
  const bs = p.blockSize ?? defaultBlockSize(c.family);
  const [lo, hi] = c.family === 4 ? [20, 32] : [116, 128];
  if (bs < lo || bs > hi)
    out.push({
      path: 'spec.blockSize',
      reason: `must be between ${lo} and ${hi} for an IPv${c.family} pool, not ${bs}`,
    });
  else if (p.disabled !== true && c.len > bs)
    out.push({
      path: 'spec.blockSize',
      reason: `the pool (/${c.len}) is smaller than one block (/${bs}); use a blockSize of at least ${c.len}`,
    });
  if (c.family === 6 && enabled(p.ipipMode))
    out.push({ path: 'spec.ipipMode', reason: 'IPIP is IPv4 only; an IPv6 pool must have ipipMode Never' });
  const uses = p.allowedUses ?? [];
  const lb = uses.includes('LoadBalancer');
  if (lb) {
    if (enabled(p.ipipMode) || enabled(p.vxlanMode))
      out.push({ path: 'spec.allowedUses', reason: 'a LoadBalancer pool cannot have IPIP or VXLAN enabled' });
    if (uses.some((u) => u !== 'LoadBalancer'))
      out.push({
        path: 'spec.allowedUses',
        reason: 'LoadBalancer cannot be combined with Workload or Tunnel',
      });
    if ((p.nodeSelector ?? 'all()') !== 'all()')
      out.push({ path: 'spec.nodeSelector', reason: 'a LoadBalancer pool must have nodeSelector all()' });
  }
  if (uses.includes('Tunnel') && p.namespaceSelector !== undefined && p.namespaceSelector !== '')
    out.push({
      path: 'spec.namespaceSelector',
      reason:
        'a pool with allowed use Tunnel cannot have a namespaceSelector (tunnel addresses belong to no namespace)',
    });
  for (const [field, sel] of [
    ['nodeSelector', p.nodeSelector],
    ['namespaceSelector', p.namespaceSelector],
  ] as const)
    if (sel?.includes('global(') === true)
      out.push({ path: `spec.${field}`, reason: 'global() is not valid here; use all()' });
  return out;
}

export const IPPoolKind = defineKind({
  kind: 'IPPool',
  description:
    'A range of pod addresses, cut into blocks that nodes claim, with its encapsulation and NAT settings.',
  spec: ipPoolSpec,
  validate: validatePool,
  checks: [
    '`cidr` is a network address (no host bits) and does not overlap link-local (169.254.0.0/16, fe80::/10).',
    '`blockSize` is 20-32 for IPv4, 116-128 for IPv6, and no shorter than the pool (unless `disabled`).',
    '`ipipMode` is `Never` on an IPv6 pool.',
    'With `allowedUses` `LoadBalancer`: no other use, no IPIP or VXLAN, `nodeSelector` `all()`.',
    'With `allowedUses` `Tunnel`: no `namespaceSelector`.',
    '`nodeSelector` and `namespaceSelector` do not use `global()`.',
    'In the datastore (across resources): no overlap with another pool; `cidr` and `blockSize` never change once stored.',
  ],
  normalize: (r: IPPool) => {
    const c = parseCidr(r.spec.cidr);
    if (c === undefined) return;
    r.spec.cidr = formatCidr(c);
    r.spec.blockSize ??= defaultBlockSize(c.family);
  },
  columns: [
    { name: 'CIDR', jsonPath: '.spec.cidr', type: 'string' },
    { name: 'BlockSize', jsonPath: '.spec.blockSize', type: 'integer' },
    { name: 'IPIP', jsonPath: '.spec.ipipMode', type: 'string' },
    { name: 'VXLAN', jsonPath: '.spec.vxlanMode', type: 'string' },
  ],
});
