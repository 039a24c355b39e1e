// Evaluating a selector against one label set: libcalico-go's Node.Evaluate for each node.

import type { Selector } from './ast.js';

/**
 * Whether a label set matches. As in Calico, a missing label fails `==`, `in`, `contains`,
 * `starts with` and `ends with`, and passes `!=` and `not in`.
 */
export function matches(sel: Selector, labels: Readonly<Record<string, string>>): boolean {
  // Own properties only: a label called `constructor` must not find Object.prototype's.
  const get = (key: string): string | undefined => (Object.hasOwn(labels, key) ? labels[key] : undefined);
  const test = (s: Selector): boolean => {
    switch (s.kind) {
      case 'all':
      case 'global':
        return true;
      case 'has':
        return get(s.key) !== undefined;
      case 'eq':
        return get(s.key) === s.value;
      case 'ne':
        return get(s.key) !== s.value;
      case 'contains':
        return get(s.key)?.includes(s.value) ?? false;
      case 'startsWith':
        return get(s.key)?.startsWith(s.value) ?? false;
      case 'endsWith':
        return get(s.key)?.endsWith(s.value) ?? false;
      case 'in': {
        const v = get(s.key);
        return v !== undefined && s.values.includes(v);
      }
      case 'notIn': {
        const v = get(s.key);
        return v === undefined || !s.values.includes(v);
      }
      case 'not':
        return !test(s.operand);
      case 'and':
        return s.operands.every(test);
      case 'or':
        return s.operands.some(test);
    }
  };
  return test(sel);
}
