/**
 * Import and export policy: ordered rules, first match wins.
 * @packageDocumentation
 */
export * from './policy.js';
