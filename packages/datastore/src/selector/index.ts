/**
 * Calico v3 label selectors (libcalico-go lib/selector): parse, match, format.
 *
 * @packageDocumentation
 */
export * from './ast.js';
export * from './errors.js';
export * from './tokenizer.js';
export { MAX_SELECTOR_DEPTH, parseSelector } from './parser.js';
export { formatSelector } from './format.js';
export { matches } from './match.js';
