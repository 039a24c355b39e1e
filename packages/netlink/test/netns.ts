// netlink's kernel tests make their namespaces as tnl-<tag>-<pid>-<n> (see src/testing).
export * from '../src/testing/index.js';
