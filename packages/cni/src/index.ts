/**
 * @tabby/cni: the `tabby` and `tabby-ipam` CNI plugins (CNI spec 1.1.0, results in 0.3.0 to
 * 1.1.0), as functions of (environment, stdin) over injected Dataplane and IpamClient.
 *
 * @packageDocumentation
 */
export * from './spec/errors.js';
export * from './spec/version.js';
export * from './spec/env.js';
export * from './spec/result.js';
export * from './spec/config.js';
export * from './spec/names.js';
export * from './commands/interfaces.js';
export type * from './commands/context.js';
export * from './commands/skel.js';
export * from './commands/run.js';
export * from './commands/exec.js';
export * from './fakes/index.js';
export * from './ipam/index.js';
export * from './node-api/index.js';
export * from './dataplane/index.js';
export * from './main.js';
export * from './compile-cache.js';
