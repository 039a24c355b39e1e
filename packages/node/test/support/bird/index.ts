/**
 * Test support: BIRD config files parsed, normalized to their meaning and compared, so a
 * rendered config can be checked against Calico's confd expectations without comparing text.
 *
 * ```ts
 * import { diffBird, normalizeBird, parseBirdFiles } from './support/bird/index.js';
 * const files = new Map([['bird.cfg', text], ['bird_aggr.cfg', aggr], ['bird_ipam.cfg', ipam]]);
 * const expected = normalizeBird(parseBirdFiles(files, 'bird.cfg'));
 * assert.deepEqual(diffBird(expected, normalizeBird(parseBirdFiles(rendered))), []);
 * ```
 *
 * @packageDocumentation
 */
export { BirdParseError, parseBirdFiles, parseBirdText, tokenize } from './parse.js';
export type { Atom, BirdConfig, Expr, OptionItem, SourceLoc, Stmt, Token, TopItem } from './parse.js';
export { normalizeBird, renderExpr, renderStmt } from './normalize.js';
export type {
  BirdFunction,
  BirdModel,
  BirdProtocol,
  BirdStmt,
  BirdValue,
  NormalizeOptions,
} from './normalize.js';
export { diffBird } from './diff.js';
