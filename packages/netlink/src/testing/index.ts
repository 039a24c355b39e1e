/**
 * Test support for the kernel tests of every package: network namespaces made and removed by
 * the test. Not for production code.
 *
 * @packageDocumentation
 */
export * from './netns.js';
