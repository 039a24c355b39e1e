// Every kind's definition, by kind name, and the resource type of each kind.
import type { BGPConfigurationSpec, BGPFilterSpec, BGPPeerSpec } from './bgp.js';
import { BGPConfigurationKind, BGPFilterKind, BGPPeerKind } from './bgp.js';
import type { KindDef } from './define.js';
import type { BlockAffinitySpec, IPAMBlockSpec, IPAMConfigSpec, IPAMHandleSpec } from './ipam.js';
import { BlockAffinityKind, IPAMBlockKind, IPAMConfigKind, IPAMHandleKind } from './ipam.js';
import type { IPPoolSpec } from './ippool.js';
import { IPPoolKind } from './ippool.js';
import type { Kind } from './kinds.js';
import type { Resource } from './meta.js';
import type { NodeSpec } from './node.js';
import { NodeKind } from './node.js';
import type { WorkloadEndpointSpec } from './workload-endpoint.js';
import { WorkloadEndpointKind } from './workload-endpoint.js';

export interface SpecOf {
  BGPConfiguration: BGPConfigurationSpec;
  BGPPeer: BGPPeerSpec;
  BGPFilter: BGPFilterSpec;
  Node: NodeSpec;
  IPPool: IPPoolSpec;
  IPAMBlock: IPAMBlockSpec;
  BlockAffinity: BlockAffinitySpec;
  IPAMHandle: IPAMHandleSpec;
  IPAMConfig: IPAMConfigSpec;
  WorkloadEndpoint: WorkloadEndpointSpec;
}

/** The stored resource of kind K. */
export type ResourceOf<K extends Kind> = Resource<K, SpecOf[K]>;
/** Any stored resource, discriminated by `kind`. */
export type AnyKindResource = { [K in Kind]: ResourceOf<K> }[Kind];

export const KIND_DEFS: { readonly [K in Kind]: KindDef<K, SpecOf[K]> } = {
  BGPConfiguration: BGPConfigurationKind,
  BGPPeer: BGPPeerKind,
  BGPFilter: BGPFilterKind,
  Node: NodeKind,
  IPPool: IPPoolKind,
  IPAMBlock: IPAMBlockKind,
  BlockAffinity: BlockAffinityKind,
  IPAMHandle: IPAMHandleKind,
  IPAMConfig: IPAMConfigKind,
  WorkloadEndpoint: WorkloadEndpointKind,
};
