// Value comparison and name globs shared by conditions, windows and trigger matching.
import type { ReadingValue } from '../contract/types.js';
import type { CompareOp } from '../../config/rules-schema.js';

/**
 * Numbers compare numerically. Anything else (booleans, strings, mixed types) supports only
 * strict `==` / `!=`; ordering a non-number is false. So `true == 1` is false.
 */
export function compare(a: ReadingValue, op: CompareOp, b: ReadingValue): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '>':
        return a > b;
      case '>=':
        return a >= b;
      case '<':
        return a < b;
      case '<=':
        return a <= b;
      case '==':
        return a === b;
      case '!=':
        return a !== b;
    }
  }
  if (op === '==') return a === b;
  if (op === '!=') return a !== b;
  return false;
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `*` matches any run of characters (including none); everything else is literal. */
export function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map(escape).join('.*')}$`, 's');
}

/** A literal name as a RegExp, so literal and glob matchers can share one list. */
export function literalRegExp(name: string): RegExp {
  return new RegExp(`^${escape(name)}$`, 's');
}

/** Numeric view of a reading for windows: booleans are 1/0; strings and non-finite numbers are not samples. */
export function numeric(v: ReadingValue): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}
