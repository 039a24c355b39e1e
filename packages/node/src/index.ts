// @tabby/node: the per-node daemon. bgpconfig/ is the pure function from a datastore
// snapshot to this node's effective BGP configuration (peers, exports, filters).
export {};
