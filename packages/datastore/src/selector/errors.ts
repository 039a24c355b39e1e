// The one exception parseSelector throws for bad input: where, what it wanted, what it got.

export class SelectorSyntaxError extends Error {
  override readonly name = 'SelectorSyntaxError';
  constructor(
    /** The selector text as given. */
    readonly selector: string,
    /** UTF-16 offset into `selector` where the problem is (its length for end of input). */
    readonly offset: number,
    /** What would have been accepted there, e.g. `a label key or '('`. */
    readonly expected: string,
    /** What was there instead, e.g. `'=='` or `end of input`. */
    readonly found: string,
    /** Where the unfinished construct began, when that helps, e.g. `to close the '(' at offset 0`. */
    readonly note?: string,
  ) {
    super(
      `expected ${expected} at offset ${offset}, found ${found}${note === undefined ? '' : ` (${note})`}`,
    );
  }
}
