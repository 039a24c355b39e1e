// felix-lite's kernel tests make their namespaces as tfl-<tag>-<pid>-<n> (or another prefix
// passed to TestNetns.create); the helpers are shared, in @tabby/netlink/testing.
import { setNetnsPrefix } from '@tabby/netlink/testing';

setNetnsPrefix('tfl');
export * from '@tabby/netlink/testing';
