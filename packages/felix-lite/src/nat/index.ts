// NAT-outgoing in nftables: the pure rendering, the nft seam, and the reconciler.
export * from './render.js';
export * from './nft.js';
export * from './reconciler.js';
