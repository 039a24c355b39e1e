// The kinds Tabby stores, with what a backend needs to place them: the plural (URL path,
// etcd key, directory name) and whether objects live in a namespace.

export const KIND_INFO = {
  BGPConfiguration: { plural: 'bgpconfigurations', namespaced: false },
  BGPPeer: { plural: 'bgppeers', namespaced: false },
  BGPFilter: { plural: 'bgpfilters', namespaced: false },
  Node: { plural: 'nodes', namespaced: false },
  IPPool: { plural: 'ippools', namespaced: false },
  IPAMBlock: { plural: 'ipamblocks', namespaced: false },
  BlockAffinity: { plural: 'blockaffinities', namespaced: false },
  IPAMHandle: { plural: 'ipamhandles', namespaced: false },
  IPAMConfig: { plural: 'ipamconfigs', namespaced: false },
  WorkloadEndpoint: { plural: 'workloadendpoints', namespaced: true },
} as const satisfies Record<string, { plural: string; namespaced: boolean }>;

export type Kind = keyof typeof KIND_INFO;

export const KINDS = Object.keys(KIND_INFO) as Kind[];

export function isKind(k: unknown): k is Kind {
  return typeof k === 'string' && Object.hasOwn(KIND_INFO, k);
}
