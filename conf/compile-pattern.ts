import { CodedError } from '../shared/coded-error.js';

/** Why a filter regex cannot be used; thrown by {@link compilePattern}. */
export class PatternError extends CodedError<'PATTERN_INVALID'> {
  constructor(message: string) {
    super('PATTERN_INVALID', message);
  }
}

// Rust's regex crate spells flags as a leading group, e.g. `(?i)` or `(?is)`. JS (Node 20) has
// no inline flags, so a leading group of flags JS also has becomes RegExp flags. Anything else,
// inline flags later in the pattern included, fails to compile and is reported, never dropped.
const LEADING_FLAGS = /^\(\?([a-zA-Z]+)\)/;
const TRANSLATABLE = new Set(['i', 'm', 's']);

/**
 * Compiles a routes.yml filter pattern. Always uses the `u` flag: Rust patterns are Unicode
 * aware (`\p{L}`, `.` matching a code point), and without `u` JS would read `\p{L}` as a literal
 * `p{L}` instead of failing. `extraFlags` adds JS flags (e.g. `i` for header names).
 */
export function compilePattern(source: string, extraFlags = ''): RegExp {
  const flags = new Set(['u', ...extraFlags]);
  let body = source;
  const lead = LEADING_FLAGS.exec(source);
  if (lead !== null) {
    for (const flag of lead[1] ?? '') {
      if (!TRANSLATABLE.has(flag)) throw new PatternError(`unsupported inline flag "(?${flag})"`);
      flags.add(flag);
    }
    body = source.slice(lead[0].length);
  }
  try {
    return new RegExp(body, [...flags].sort().join(''));
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    // V8 says "Invalid regular expression: /<source>/<flags>: <reason>"; keep the reason only.
    const reason = err.message.slice(err.message.lastIndexOf(': ') + 2);
    throw new PatternError(`invalid regular expression: ${reason}`);
  }
}
