// The desired kernel state: inputs, the pure function, and the seam for path events.
export * from './inputs.js';
export * from './compute.js';
export * from './paths.js';
