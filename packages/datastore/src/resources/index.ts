/**
 * Calico's resource kinds as Tabby stores them.
 *
 * @packageDocumentation
 */
export * from './meta.js';
export * from './kinds.js';
