// The route model shared by the desired-state function and the reconciler.
export * from './ip.js';
export * from './route.js';
export * from './neighbour.js';
