import { setFlagsFromString } from 'node:v8';
import { CodedError } from '../shared/coded-error.js';

/** Why a filter regex cannot be used; thrown by {@link compilePattern}. */
export class PatternError extends CodedError<'PATTERN_INVALID'> {
  constructor(message: string) {
    super('PATTERN_INVALID', message);
  }
}

/*
 * Regexes from routes.yml run against what clients send, so a pattern must never backtrack
 * catastrophically (`^(a+)+$` against 64 KiB of `a` plus `!` never ends on V8's backtracking
 * engine). Measured on Node 20.20 (V8 11.3), README "Filters":
 * - RE2 bindings are native code compiled at install: not allowed here.
 * - V8's linear-time engine (the `l` flag): `^(a+)+$` on 64 KiB in 71 ms, but 16 to 600 times
 *   slower per match than the backtracking engine (`^GET$` 299 ns vs 18 ns; `DROP\s+TABLE`
 *   over 1 KiB 48.8 µs vs 74 ns), and it takes neither the `i` nor the `u` flag, nor counted
 *   repetitions above 16.
 * - V8's fallback (`--enable-experimental-regexp-engine-on-excessive-backtracks`): patterns run
 *   on the backtracking engine, and a match that backtracks more than 50,000 times is rerun on
 *   the linear engine: `^(a+)+$` on 64 KiB in 84 ms, typical matches at backtracking speed.
 *   The fallback exists only for patterns the linear engine can run.
 * So both flags are set for the whole process before the first pattern is compiled (the
 * supervisor, every edge, check-config and tests all compile through here), and every pattern
 * is compiled once with `l` at load to prove the fallback exists for it; one that the linear
 * engine refuses is a config error. To keep patterns in that subset, `(?i)` is applied by
 * rewriting ASCII letters into both cases, counted repetitions above 16 are split into runs of
 * at most 16, capture groups become non-capturing, and the `u` flag is used only to validate
 * the syntax (strictly) at load, not to run.
 */
let linearEngineOn = false;

/**
 * Turns both flags on for this process, once, before the first pattern is compiled: a process
 * whose config has no filters never turns them on, so its own regexes run as they always did.
 */
function enableLinearEngine(): void {
  if (linearEngineOn) return;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  linearEngineOn = true;
}

/** Whether V8 took the flags (an `l` regex compiles only with the linear engine on). */
export function linearEngineAvailable(): boolean {
  enableLinearEngine();
  try {
    // A flags string in a variable: a literal /a/l is a syntax error for the tools.
    new RegExp('a', LINEAR);
    return true;
  } catch {
    return false;
  }
}

// Rust's regex crate spells flags as a leading group, e.g. `(?i)` or `(?is)`. JS (Node 20) has
// no inline flags, so a leading group of flags JS also has becomes RegExp flags. Anything else,
// inline flags later in the pattern included, fails to compile and is reported, never dropped.
/** V8's flag for its linear-time engine (only known with --enable-experimental-regexp-engine). */
const LINEAR = 'l';

const LEADING_FLAGS = /^\(\?([a-zA-Z]+)\)/;
const TRANSLATABLE = new Set(['i', 'm', 's']);
/** The linear engine's largest counted repetition (V8 11.3's replication limit). */
const MAX_COUNT = 16;
/** The largest count split into runs (bounds the compiled pattern's size). */
const MAX_EXPANDED = 256;
/** The largest rewritten pattern, in chars (nested counts multiply its size). */
const MAX_REWRITTEN = 8192;

/**
 * Compiles a routes.yml filter pattern (JS syntax, as checked with the `u` flag, and an
 * optional leading Rust flag group `(?i)`, `(?m)`, `(?s)` or a combination). `extraFlags` may
 * hold `i` (header names). The result runs on V8's backtracking engine with the linear-time
 * fallback; it has no `u` flag, so `.` and `[^...]` match one UTF-16 unit. Only `test` is
 * meant to be called on it (greediness and captures are not kept). Throws PatternError for
 * invalid syntax, backreferences, lookarounds, Unicode property escapes (`\p{...}`), `(?i)`
 * over non-ASCII letters, and anything V8's linear engine refuses.
 */
export function compilePattern(source: string, extraFlags = ''): RegExp {
  enableLinearEngine();
  const flags = new Set([...extraFlags]);
  let body = source;
  const lead = LEADING_FLAGS.exec(source);
  if (lead !== null) {
    for (const flag of lead[1] ?? '') {
      if (!TRANSLATABLE.has(flag)) throw new PatternError(`unsupported inline flag "(?${flag})"`);
      flags.add(flag);
    }
    body = source.slice(lead[0].length);
  }
  const runFlags = [...flags].filter((f) => f === 'm' || f === 's').join('');
  try {
    // Strict syntax: without `u`, V8 reads `\p{L}` as `p{L}` and `\1` without a group as \x01.
    new RegExp(body, `${runFlags}u`);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new PatternError(`invalid regular expression: ${reasonOf(err)}`);
  }
  const linear = rewrite(body, flags.has('i'));
  try {
    new RegExp(linear, runFlags + LINEAR);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    if (!linearEngineAvailable()) {
      throw new PatternError("V8's linear-time regex engine is not available in this Node.js");
    }
    throw new PatternError(
      'cannot be run in linear time (nested counted repetitions multiplying beyond 16?): ' +
        'a filter regex must not allow catastrophic backtracking',
    );
  }
  return new RegExp(linear, runFlags);
}

/** V8 says "Invalid regular expression: /<source>/<flags>: <reason>"; keep the reason only. */
function reasonOf(err: SyntaxError): string {
  return err.message.slice(err.message.lastIndexOf(': ') + 2);
}

const LETTER = /[a-zA-Z]/;

/** `x` and `X` for an ASCII letter; refuses other cased letters under (?i). */
function foldChar(ch: string): string {
  if (LETTER.test(ch)) return `[${ch.toLowerCase()}${ch.toUpperCase()}]`;
  if (ch.toLowerCase() !== ch.toUpperCase()) {
    throw new PatternError(`(?i) applies to ASCII letters only: "${ch}" would not fold`);
  }
  return ch;
}

/**
 * Rewrites a pattern (valid with `u`) for the linear engine: groups non-capturing, `(?i)`
 * applied to ASCII letters, counts above 16 split. Refuses what the linear engine cannot run
 * and what means something else without `u`.
 */
function rewrite(src: string, fold: boolean): string {
  let out = '';
  /** Where the last atom starts in `out` (for a quantifier that follows it). */
  let atomStart = -1;
  const groups: number[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const seq = readEscape(src, i);
      atomStart = out.length;
      // `\x41` and `\u0041` are letters too; `u` refused identity escapes such as `\q`.
      const ch = charOf(seq);
      // foldChar also refuses a non-ASCII cased letter written as an escape (`\u00e9`).
      // foldChar gives `[xX]` for an ASCII letter, the char itself for an uncased one.
      const folded = fold && ch !== undefined ? foldChar(ch) : undefined;
      out += folded !== undefined && LETTER.test(ch!) ? folded : seq;
      i += seq.length;
    } else if (c === '[') {
      const end = classEnd(src, i);
      atomStart = out.length;
      out += fold ? foldClass(src.slice(i, end)) : src.slice(i, end);
      i = end;
    } else if (c === '(') {
      groups.push(out.length);
      if (src.startsWith('(?:', i)) {
        i += 3;
      } else if (src.startsWith('(?=', i) || src.startsWith('(?!', i)) {
        throw new PatternError('lookaheads are not supported (they cannot run in linear time)');
      } else if (src.startsWith('(?<=', i) || src.startsWith('(?<!', i)) {
        throw new PatternError('lookbehinds are not supported (they cannot run in linear time)');
      } else if (src.startsWith('(?<', i)) {
        i = src.indexOf('>', i) + 1;
      } else {
        i += 1;
      }
      out += '(?:';
    } else if (c === ')') {
      atomStart = groups.pop() ?? 0;
      out += ')';
      i++;
    } else if (c === '{') {
      const close = src.indexOf('}', i);
      const [min, max] = parseCount(src.slice(i + 1, close));
      let lazy = '';
      i = close + 1;
      if (src[i] === '?') {
        lazy = '?';
        i++;
      }
      const atom = out.slice(atomStart);
      out = out.slice(0, atomStart) + expandCount(atom, min, max, lazy);
      // Nested counts multiply: bound the rewritten pattern before it grows without end.
      if (out.length > MAX_REWRITTEN) {
        throw new PatternError(
          `too large once its counted repetitions are expanded (over ${MAX_REWRITTEN} chars)`,
        );
      }
    } else {
      if (c === '+' && atomStart >= 0) {
        // `X+` as `XX*`: the linear engine refuses `(?:X{16})+` (it counts `+` as a repetition
        // of its own) but takes the same language written this way.
        out += `${out.slice(atomStart)}*`;
      } else if (c === '*' || c === '+' || c === '?' || c === '|' || c === '^' || c === '$') {
        out += c;
      } else {
        atomStart = out.length;
        // Code points, not UTF-16 units: an astral character is one atom.
        const ch = String.fromCodePoint(src.codePointAt(i)!);
        const folded = fold ? foldChar(ch) : ch;
        out += ch.length === 2 ? `(?:${folded})` : folded;
        i += ch.length - 1;
      }
      i++;
    }
  }
  return out;
}

/** The whole escape sequence at `i` (source valid with `u`). */
function readEscape(src: string, i: number): string {
  const next = src[i + 1] ?? '';
  if (next === 'p' || next === 'P') {
    throw new PatternError('Unicode property escapes (\\p{...}) are not supported');
  }
  if (/[1-9]/.test(next) || next === 'k') {
    throw new PatternError('backreferences are not supported (they cannot run in linear time)');
  }
  if (next === 'u' && src[i + 2] === '{') {
    throw new PatternError('\\u{...} is not supported: write \\uXXXX');
  }
  if (next === 'x') return src.slice(i, i + 4);
  if (next === 'u') return src.slice(i, i + 6);
  if (next === 'c') return src.slice(i, i + 3);
  return src.slice(i, i + 2);
}

/** Index just past the class starting at `i`. */
function classEnd(src: string, i: number): number {
  let j = i + 1;
  if (src[j] === '^') j++;
  while (j < src.length && src[j] !== ']') {
    if (src[j] === '\\') {
      j += readEscape(src, j).length;
    } else if ((src.codePointAt(j) ?? 0) > 0xffff) {
      throw new PatternError('characters above U+FFFF are not supported in a class');
    } else j++;
  }
  return j + 1;
}

/** Adds the other case of every ASCII letter a class holds (single letters and ranges). */
function foldClass(cls: string): string {
  const inner = cls.slice(cls[1] === '^' ? 2 : 1, -1);
  let extra = '';
  let k = 0;
  const items: string[] = [];
  while (k < inner.length) {
    let item: string;
    if (inner[k] === '\\') item = readEscape(inner, k);
    else item = String.fromCodePoint(inner.codePointAt(k)!);
    items.push(item);
    k += item.length;
  }
  for (let n = 0; n < items.length; n++) {
    const a = items[n]!;
    if (items[n + 1] === '-' && n + 2 < items.length) {
      const b = items[n + 2]!;
      extra += foldRange(charOf(a), charOf(b));
      n += 2;
      continue;
    }
    const ch = charOf(a);
    if (ch !== undefined) {
      if (LETTER.test(ch)) extra += ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
      else if (ch.toLowerCase() !== ch.toUpperCase()) foldChar(ch);
    }
  }
  return `${cls.slice(0, -1)}${extra}]`;
}

/** The character an item of a class stands for, if it is one literal character. */
function charOf(item: string): string | undefined {
  if (!item.startsWith('\\')) return item;
  if (item.startsWith('\\x') || item.startsWith('\\u')) {
    return String.fromCharCode(Number.parseInt(item.slice(2), 16));
  }
  return undefined;
}

/** The other-case ranges of the ASCII letters in [a, b]. */
function foldRange(a: string | undefined, b: string | undefined): string {
  if (a === undefined || b === undefined) return '';
  const lo = a.charCodeAt(0);
  const hi = b.charCodeAt(0);
  if (hi > 0x7f && (lo <= 0x7f || lo < hi)) {
    // A range over non-ASCII letters cannot be folded letter by letter here.
    for (let code = Math.max(lo, 0x80); code <= hi; code++) foldChar(String.fromCharCode(code));
  }
  let extra = '';
  for (const [from, to, shift] of [
    [0x41, 0x5a, 0x20],
    [0x61, 0x7a, -0x20],
  ] as const) {
    const s = Math.max(lo, from);
    const e = Math.min(hi, to);
    if (s <= e) extra += `${String.fromCharCode(s + shift)}-${String.fromCharCode(e + shift)}`;
  }
  return extra;
}

function parseCount(text: string): [number, number] {
  const [a, b] = text.split(',');
  const min = Number(a);
  const max = b === undefined ? min : b === '' ? Number.POSITIVE_INFINITY : Number(b);
  return [min, max];
}

/** `atom{min,max}` as runs the linear engine takes: at most 16 per counted repetition. */
function expandCount(atom: string, min: number, max: number, lazy: string): string {
  if (max <= MAX_COUNT) {
    return `${atom}{${min}${max === min ? '' : `,${max}`}}${lazy}`;
  }
  const group = `(?:${atom})`;
  if (min > MAX_EXPANDED || (max !== Number.POSITIVE_INFINITY && max > MAX_EXPANDED)) {
    throw new PatternError(`counted repetitions above ${MAX_EXPANDED} are not supported`);
  }
  let out = '';
  let left = min;
  while (left > 0) {
    const n = Math.min(left, MAX_COUNT);
    out += `${group}{${n}}${lazy}`;
    left -= n;
  }
  if (max === Number.POSITIVE_INFINITY) return `${out}${group}*${lazy}`;
  let optional = max - min;
  while (optional > 0) {
    const n = Math.min(optional, MAX_COUNT);
    out += `${group}{0,${n}}${lazy}`;
    optional -= n;
  }
  return out;
}
