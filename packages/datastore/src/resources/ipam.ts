// The IPAM kinds, with Calico's field names (libcalico-go IPAMBlock, BlockAffinity,
// IPAMHandle, IPAMConfig; crd.projectcalico.org/v1), so an existing Calico datastore's IPAM
// state reads unchanged. Names follow Calico's: see blockName / affinityName below.
import type { Issue } from '../schema/index.js';
import { cidrSize, formatCidr, parseCidr, s } from '../schema/index.js';
import type { Infer } from '../schema/index.js';
import { defineKind } from './define.js';
import type { Resource } from './meta.js';

const attribute = s.object(
  {
    handle_id: s.optional(
      s.string({ description: 'The handle (allocation owner) this address belongs to.' }),
    ),
    secondary: s.optional(
      s.map(s.string(), {
        description: 'Who uses the address: node, namespace, pod, timestamp (as Calico).',
      }),
    ),
    releasedAt: s.optional(s.string({ description: 'When the address was released (cool-down), RFC 3339.' })),
  },
  { description: 'Metadata of one allocation; several addresses of one handle share an entry.' },
);

export const ipamBlockSpec = s.object({
  cidr: s.string({
    format: 'cidr',
    description: "The block's CIDR (a blockSize-sized piece of an IP pool).",
  }),
  affinity: s.optional(
    s.string({
      pattern: '^host:.+$',
      description: 'The node that owns this block, as "host:<node name>"; absent for a block no node owns.',
    }),
  ),
  affinityClaimTime: s.optional(s.string({ description: 'When the affinity was claimed, RFC 3339.' })),
  strictAffinity: s.bool({
    description: 'Deprecated in Calico and unused; IPAMConfig.strictAffinity decides.',
  }),
  allocations: s.array(s.nullable(s.int({ minimum: 0 })), {
    description:
      'One entry per address of the block, in order: null when free, else an index into attributes.',
  }),
  unallocated: s.array(s.int({ minimum: 0 }), {
    description: 'The free ordinals, in the order they will be handed out.',
  }),
  attributes: s.array(attribute, { description: 'Allocation metadata, referenced from allocations.' }),
  sequenceNumber: s.optional(
    s.int({ minimum: 0, description: 'Bumped on every write; stamped on each allocation.' }),
    { default: 0 },
  ),
  sequenceNumberForAllocation: s.optional(
    s.map(s.int({ minimum: 0 }), {
      description: 'Ordinal (as a string) → the block sequenceNumber when that address was allocated.',
    }),
  ),
  deleted: s.optional(s.bool({ description: 'Set while the block is being deleted.' })),
});
export type IPAMBlockSpec = Infer<typeof ipamBlockSpec>;
export type IPAMBlock = Resource<'IPAMBlock', IPAMBlockSpec>;

/** Calico's block name: the CIDR with `.`, `:` and `/` as `-` (10.65.1.0/26 → 10-65-1-0-26). */
export function blockName(cidr: string): string {
  return cidr.replace(/[.:/]/g, '-');
}

function validateBlock(r: IPAMBlock): Issue[] {
  const out: Issue[] = [];
  const c = parseCidr(r.spec.cidr);
  if (c === undefined) return out;
  if (c.hostBits) out.push({ path: 'spec.cidr', reason: `has host bits set; the block is ${formatCidr(c)}` });
  const size = cidrSize(c);
  if (size > 65536n)
    return [{ path: 'spec.cidr', reason: `a block of /${c.len} is too large (at most 65536 addresses)` }];
  const n = Number(size);
  const { allocations, unallocated, attributes } = r.spec;
  if (allocations.length !== n)
    out.push({
      path: 'spec.allocations',
      reason: `must have one entry per address (${n}), not ${allocations.length}`,
    });
  allocations.forEach((a, i) => {
    if (a !== null && a >= attributes.length)
      out.push({
        path: `spec.allocations[${i}]`,
        reason: `refers to attribute ${a}, but there are ${attributes.length}`,
      });
  });
  const seen = new Set<number>();
  unallocated.forEach((o, i) => {
    if (o >= n)
      out.push({ path: `spec.unallocated[${i}]`, reason: `ordinal ${o} is outside the block (0-${n - 1})` });
    else if (seen.has(o))
      out.push({ path: `spec.unallocated[${i}]`, reason: `ordinal ${o} is listed twice` });
    else if (allocations[o] !== null && allocations[o] !== undefined)
      out.push({ path: `spec.unallocated[${i}]`, reason: `ordinal ${o} is free and allocated at once` });
    seen.add(o);
  });
  return out;
}

export const IPAMBlockKind = defineKind({
  kind: 'IPAMBlock',
  description:
    'A block of addresses of an IP pool, usually affine to one node, with its allocations (IPAM state).',
  spec: ipamBlockSpec,
  validate: validateBlock,
  checks: [
    '`cidr` has no host bits and holds at most 65536 addresses.',
    '`allocations` has one entry per address; each non-null entry is an index into `attributes`.',
    '`unallocated` ordinals are inside the block, listed once, and not allocated.',
  ],
  columns: [
    { name: 'CIDR', jsonPath: '.spec.cidr', type: 'string' },
    { name: 'Affinity', jsonPath: '.spec.affinity', type: 'string' },
  ],
});

export const blockAffinitySpec = s.object({
  state: s.enum(['pending', 'confirmed', 'pendingDeletion', ''], {
    description:
      'pending while the node claims the block, confirmed once the block is written, pendingDeletion while released. Empty (older Calico data) reads as confirmed.',
  }),
  node: s.string({ description: 'The node that has (or is claiming) the block.' }),
  type: s.optional(s.enum(['host', 'virtual'], { description: 'Affinity type; "host" for nodes.' })),
  cidr: s.string({ format: 'cidr', description: "The block's CIDR." }),
  deleted: s.enum(['true', 'false', ''], {
    description:
      'A string for compatibility with Calico (used in label selectors there). Empty reads as false.',
  }),
});
export type BlockAffinitySpec = Infer<typeof blockAffinitySpec>;
export type BlockAffinity = Resource<'BlockAffinity', BlockAffinitySpec>;

/** Calico's affinity name: `<node>-<block name>`. */
export function affinityName(node: string, cidr: string): string {
  return `${node}-${blockName(cidr)}`;
}

export const BlockAffinityKind = defineKind({
  kind: 'BlockAffinity',
  description: "A node's claim on an IPAM block: pending, then confirmed.",
  spec: blockAffinitySpec,
  // Calico's confd reads an affinity without a state as "implicitly confirmed" (bird_aggr
  // template); older Calico wrote them so. Stored canonically: confirmed, not deleted.
  normalize: (r: BlockAffinity) => {
    if (r.spec.state === '') r.spec.state = 'confirmed';
    if (r.spec.deleted === '') r.spec.deleted = 'false';
  },
  columns: [
    { name: 'Node', jsonPath: '.spec.node', type: 'string' },
    { name: 'CIDR', jsonPath: '.spec.cidr', type: 'string' },
    { name: 'State', jsonPath: '.spec.state', type: 'string' },
  ],
});

export const ipamHandleSpec = s.object({
  handleID: s.string({
    description: 'The allocation owner, e.g. "<network>.<container ID>"; equal to the object name.',
  }),
  block: s.map(s.int({ minimum: 0 }), {
    description: 'Block CIDR (e.g. "10.65.1.0/26") → number of addresses this handle holds in that block.',
  }),
  deleted: s.optional(s.bool({ description: 'Set while the handle is being deleted.' })),
});
export type IPAMHandleSpec = Infer<typeof ipamHandleSpec>;
export type IPAMHandle = Resource<'IPAMHandle', IPAMHandleSpec>;

export const IPAMHandleKind = defineKind({
  kind: 'IPAMHandle',
  description:
    'Every block where one owner (pod, tunnel) holds addresses, so release is by owner and idempotent.',
  spec: ipamHandleSpec,
  validate: (r: IPAMHandle) =>
    r.spec.handleID === r.metadata.name
      ? []
      : [{ path: 'spec.handleID', reason: `must equal metadata.name (${JSON.stringify(r.metadata.name)})` }],
  checks: ['`handleID` equals `metadata.name`.'],
});

export const ipamConfigSpec = s.object({
  strictAffinity: s.bool({
    description:
      'Never borrow addresses from blocks affine to other nodes (needed for Windows nodes). [Default: false]',
  }),
  autoAllocateBlocks: s.bool({ description: 'Claim new blocks when a node runs out. [Default: true]' }),
  maxBlocksPerHost: s.optional(
    s.int({
      minimum: 0,
      maximum: 2147483647,
      description: 'If non-zero, the most blocks one node may claim.',
    }),
  ),
});
export type IPAMConfigSpec = Infer<typeof ipamConfigSpec>;
export type IPAMConfig = Resource<'IPAMConfig', IPAMConfigSpec>;

/** The only IPAMConfig name Calico reads. */
export const IPAM_CONFIG_NAME = 'default';

export const IPAMConfigKind = defineKind({
  kind: 'IPAMConfig',
  description: 'Cluster-wide IPAM settings; one object, named "default".',
  spec: ipamConfigSpec,
  validate: (r: IPAMConfig) =>
    r.metadata.name === IPAM_CONFIG_NAME
      ? []
      : [
          {
            path: 'metadata.name',
            reason: `must be "${IPAM_CONFIG_NAME}" (the only IPAMConfig that is read)`,
          },
        ],
  checks: ['`metadata.name` is `default` (the only IPAMConfig that is read).'],
});
