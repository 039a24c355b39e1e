/**
 * The bgp-ts wire codec: BGP-4 messages to and from bytes.
 *
 * @example
 * ```ts
 * import { MessageFramer, decodeFrame, makeContext } from 'bgp-ts/wire';
 * const framer = new MessageFramer();
 * const ctx = makeContext({ as4: true });
 * socket.on('data', (chunk) => framer.push(chunk, (_type, frame) => handle(decodeFrame(frame, ctx))));
 * ```
 * @packageDocumentation
 */
export * from './types.js';
export * from './errors.js';
export * from './context.js';
export * from './framer.js';
export * from './prefix.js';
export * from './open.js';
export * from './attributes.js';
export { encodeAttributes } from './attributes-encode.js';
export * from './update.js';
export * from './notification.js';
export * from './route-refresh.js';
export * from './message.js';
export * from './json.js';
