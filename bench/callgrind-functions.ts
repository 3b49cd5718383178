// `--instructions --top N`: where one window's instructions went. A callgrind dump is read
// function by function (self and inclusive Ir); code V8 compiled at run time, which callgrind
// only knows by address, is named from the `/tmp/perf-<pid>.map` node writes under
// `--perf-basic-prof`; functions of the same name are summed and sorted into categories.

import { basename } from 'node:path';
import { BenchError } from './bench-error.js';
import { callgrindTotal } from './callgrind.js';

/** One function of a callgrind dump, as callgrind names it. */
export interface CallgrindFunction {
  /** The object file (`ob=`): a path, or `???` for code outside any file (V8's JIT). */
  readonly object: string;
  /** The function (`fn=`): a symbol, or `0x<16 hex digits>` when callgrind has none. */
  readonly name: string;
  /** Instructions (Ir) executed in the function itself. */
  readonly self: number;
}

/** One call arc of a dump: the Ir spent in `callee` (and below) when called from `caller`. */
export interface CallgrindCall {
  /** Index of the caller in {@link CallgrindProfile.functions}. */
  readonly caller: number;
  /** Index of the callee in {@link CallgrindProfile.functions}. */
  readonly callee: number;
  /** Inclusive Ir of those calls. */
  readonly instructions: number;
}

/** A dump read function by function. */
export interface CallgrindProfile {
  /** The dump's `totals:` (Ir): the sum of every function's self Ir. */
  readonly total: number;
  readonly functions: readonly CallgrindFunction[];
  readonly calls: readonly CallgrindCall[];
}

/**
 * Reads a callgrind output file (format version 1, as callgrind 3.x writes it): `ob=`/`fn=`
 * (and `cob=`/`cfn=`) names, compressed as `(id) name` at first use and `(id)` after; cost lines
 * `<positions> <Ir> ...` (as many positions as the `positions:` line names, `line` by default,
 * each absolute, `+n`/`-n` relative or `*`); the cost line after a `calls=` line is that call's
 * inclusive cost, not the caller's own. `fl=`/`fi=`/`fe=`/`cfi=` (files) and `jump=`/`jcnd=`
 * lines do not change whose cost it is and are skipped. Throws `BENCH_CALLGRIND`, naming
 * `source`, when Ir is not the first event, a compressed name is used before it is defined, a
 * cost line is malformed, or the functions' self Ir do not add up to the dump's total.
 */
export function parseCallgrindProfile(text: string, source: string): CallgrindProfile {
  const total = callgrindTotal(text, source);
  const objects = new Map<string, string>();
  const names = new Map<string, string>();
  const index = new Map<string, number>();
  const functions: { object: string; name: string; self: number }[] = [];
  const calls = new Map<string, { caller: number; callee: number; instructions: number }>();
  let positions = 1;
  let object = '???';
  let current: number | undefined;
  let callObject: string | undefined;
  let callee: string | undefined;
  let inCall = false;
  const fail = (lineNo: number, why: string): never => {
    throw new BenchError('BENCH_CALLGRIND', `${source}:${lineNo}: ${why}`);
  };
  const functionOf = (ob: string, fn: string): number => {
    const key = `${ob}\0${fn}`;
    let at = index.get(key);
    if (at === undefined) {
      at = functions.length;
      functions.push({ object: ob, name: fn, self: 0 });
      index.set(key, at);
    }
    return at;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const first = line.charCodeAt(0);
    const isCost =
      (first >= 48 && first <= 57) || line[0] === '+' || line[0] === '-' || line[0] === '*';
    if (isCost) {
      const fields = line.trim().split(/\s+/);
      const ir = fields[positions] ?? '0';
      if (!/^\d+$/.test(ir)) fail(i + 1, `not a cost line: ${line.slice(0, 100)}`);
      const cost = Number(ir);
      if (current === undefined) fail(i + 1, 'a cost line before any fn=');
      const at = current as number;
      if (inCall) {
        const target = functionOf(callObject ?? object, callee as string);
        const key = `${at} ${target}`;
        const arc = calls.get(key);
        if (arc) arc.instructions += cost;
        else calls.set(key, { caller: at, callee: target, instructions: cost });
        inCall = false;
        callObject = undefined;
        callee = undefined;
      } else {
        (functions[at] as { self: number }).self += cost;
      }
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq) : '';
    const value = line.slice(eq + 1);
    switch (key) {
      case 'ob':
        object = compressed(objects, value, i + 1, fail);
        break;
      case 'cob':
        callObject = compressed(objects, value, i + 1, fail);
        break;
      case 'fn':
        current = functionOf(object, compressed(names, value, i + 1, fail));
        break;
      case 'cfn':
        callee = compressed(names, value, i + 1, fail);
        break;
      case 'calls':
        if (callee === undefined) fail(i + 1, 'calls= without cfn=');
        inCall = true;
        break;
      default:
        if (line.startsWith('positions:')) {
          positions = line.slice('positions:'.length).trim().split(/\s+/).length;
        }
    }
  }
  const sum = functions.reduce((s, f) => s + f.self, 0);
  if (sum !== total) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `${source}: the functions' self Ir add up to ${sum}, the dump's total is ${total}`,
    );
  }
  return { total, functions, calls: [...calls.values()] };
}

/** A `(id) name` definition, an `(id)` reference, or a plain name, resolved through `table`. */
function compressed(
  table: Map<string, string>,
  value: string,
  lineNo: number,
  fail: (lineNo: number, why: string) => never,
): string {
  const match = /^\((\d+)\)(?: (.*))?$/.exec(value);
  if (match === null) return value;
  const id = match[1] as string;
  if (match[2] !== undefined) {
    table.set(id, match[2]);
    return match[2];
  }
  const name = table.get(id);
  return name ?? fail(lineNo, `(${id}) used before it is defined`);
}

/** One line of a `/tmp/perf-<pid>.map`: code at [start, start + size) named `name`. */
export interface PerfMapEntry {
  readonly start: number;
  readonly size: number;
  readonly name: string;
}

/**
 * The entries of a perf map (`<start hex> <size hex> <name>` per line, as V8 writes them under
 * `--perf-basic-prof`), in file order. A line that is not one (a last line cut short while it
 * was written) is skipped.
 */
export function parsePerfMap(text: string): PerfMapEntry[] {
  const entries: PerfMapEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.+)$/.exec(line);
    if (match === null) continue;
    const start = Number.parseInt(match[1] as string, 16);
    const size = Number.parseInt(match[2] as string, 16);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(start + size)) continue;
    entries.push({ start, size, name: match[3] as string });
  }
  return entries;
}

/**
 * The name of each address: that of the LAST entry in file order whose [start, start + size)
 * covers it (V8 frees code and compiles new code at the same address; the latest entry is the
 * code there now). Addresses no entry covers are absent from the result. Each entry paints the
 * sorted addresses it covers, later entries over earlier ones: O(entries × log addresses +
 * covered pairs).
 */
export function namesOfAddresses(
  entries: readonly PerfMapEntry[],
  addresses: readonly number[],
): Map<number, string> {
  const sorted = [...new Set(addresses)].sort((a, b) => a - b);
  const named = new Map<number, string>();
  for (const entry of entries) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sorted[mid] as number) < entry.start) lo = mid + 1;
      else hi = mid;
    }
    const end = entry.start + entry.size;
    for (let i = lo; i < sorted.length && (sorted[i] as number) < end; i++) {
      named.set(sorted[i] as number, entry.name);
    }
  }
  return named;
}

/** Where a function's instructions are charged (see {@link categoryOfFunction}). */
export type InstructionCategory =
  | 'gateway JS'
  | "Node's JS"
  | 'V8 builtins'
  | 'V8/Node C++'
  | 'uWS'
  | 'libc'
  | 'other';

/** Every category, in the order of the README. */
export const INSTRUCTION_CATEGORIES: readonly InstructionCategory[] = [
  'gateway JS',
  "Node's JS",
  'V8 builtins',
  'V8/Node C++',
  'uWS',
  'libc',
  'other',
];

/** A function as the report names it, summed over every callgrind function of that name. */
export interface NamedFunction {
  /** `*#onHead dist/worker/h1-client.js:709:12`, `v8::internal::Heap::Scavenge [node]`, ... */
  readonly name: string;
  readonly category: InstructionCategory;
  /** Ir in the function itself. */
  readonly self: number;
  /**
   * Ir in the function and what it called: its self Ir plus its calls to functions of other
   * names (a call between two functions of the same name is its own work, counted once).
   * Recursion through another name counts twice, as in callgrind_annotate's inclusive view.
   */
  readonly inclusive: number;
}

/** How {@link nameFunctions} names and sorts a dump's functions. */
export interface NamingContext {
  /** The perf map of the process, as of the dump (entries in file order). */
  readonly perfMap: readonly PerfMapEntry[];
  /** The checkout whose dist/ ran: its `file://<root>/dist/` JS is the gateway's. */
  readonly root: string;
  /** node's binary as callgrind names its object (`/usr/bin/node`). */
  readonly node: string;
}

/**
 * The dump's functions by display name, largest self Ir first. JIT code (object `???`, name
 * `0x...`) takes the perf map's name at its address (see {@link namesOfAddresses}), the
 * `JS:` prefix and the checkout's `file://<root>/` cut, or keeps its hex when no entry covers
 * it; native functions keep callgrind's symbol, its C++ parameter list cut, with the object's
 * basename in brackets.
 */
export function nameFunctions(profile: CallgrindProfile, context: NamingContext): NamedFunction[] {
  const jit = profile.functions.flatMap((f) => {
    const address = jitAddress(f);
    return address === undefined ? [] : [address];
  });
  const mapped = namesOfAddresses(context.perfMap, jit);
  const byName = new Map<string, { category: InstructionCategory; self: number; calls: number }>();
  const nameOf = profile.functions.map((f): string => {
    const address = jitAddress(f);
    let name: string;
    let category: InstructionCategory;
    if (address !== undefined) {
      const raw = mapped.get(address);
      name =
        raw === undefined ? `${withoutRecursion(f.name)} [???]` : shortJitName(raw, context.root);
      category = raw === undefined ? 'other' : jitCategory(raw, context.root);
    } else {
      name = `${shortNativeName(f.name)} [${basename(f.object)}]`;
      category = nativeCategory(f, context.node);
    }
    const entry = byName.get(name);
    if (entry) entry.self += f.self;
    else byName.set(name, { category, self: f.self, calls: 0 });
    return name;
  });
  for (const call of profile.calls) {
    const caller = nameOf[call.caller] as string;
    if (caller === nameOf[call.callee]) continue;
    (byName.get(caller) as { calls: number }).calls += call.instructions;
  }
  return [...byName]
    .map(([name, e]) => ({ name, category: e.category, self: e.self, inclusive: e.self + e.calls }))
    .sort((a, b) => b.self - a.self || a.name.localeCompare(b.name));
}

/** The Ir of each category (all of them, zero ones included), in {@link INSTRUCTION_CATEGORIES} order. */
export function categoryTotals(
  functions: readonly NamedFunction[],
): { category: InstructionCategory; self: number }[] {
  const totals = new Map<InstructionCategory, number>(INSTRUCTION_CATEGORIES.map((c) => [c, 0]));
  for (const f of functions) totals.set(f.category, (totals.get(f.category) ?? 0) + f.self);
  return INSTRUCTION_CATEGORIES.map((category) => ({
    category,
    self: totals.get(category) ?? 0,
  }));
}

/**
 * The address of a function callgrind found outside any file and could not name: `0x<hex>`,
 * maybe with callgrind's recursion level (`'2`, under its default `--separate-recs=2`).
 */
function jitAddress(f: CallgrindFunction): number | undefined {
  const match = /^0x([0-9a-fA-F]+)(?:'\d+)?$/.exec(f.name);
  if (f.object !== '???' || match === null) return undefined;
  const address = Number.parseInt(match[1] as string, 16);
  return Number.isSafeInteger(address) ? address : undefined;
}

/**
 * A perf map name for the report: `JS:*#onHead file:///<root>/dist/x.js:1:2` becomes
 * `*#onHead dist/x.js:1:2` (the tier mark stays: `~` interpreted, `^` Sparkplug, `+` Maglev,
 * `*` TurboFan); other kinds (`Builtin:`, `RegExp:`, `Stub:`...) stay as V8 wrote them.
 */
export function shortJitName(raw: string, root: string): string {
  if (!raw.startsWith('JS:')) return raw;
  return raw.slice(3).replaceAll(`file://${root.replace(/\/+$/, '')}/`, '');
}

/**
 * The category of a perf map name: JS of `file://<root>/dist/` the gateway's, `node:` JS
 * Node's, `Builtin:` and `BytecodeHandler:` V8 builtins, anything else (other JS such as
 * node_modules', `RegExp:` code, stubs) other.
 */
export function jitCategory(raw: string, root: string): InstructionCategory {
  if (raw.startsWith('JS:')) {
    if (raw.includes(`file://${root.replace(/\/+$/, '')}/dist/`)) return 'gateway JS';
    if (raw.includes(' node:')) return "Node's JS";
    return 'other';
  }
  if (raw.startsWith('Builtin:') || raw.startsWith('BytecodeHandler:')) return 'V8 builtins';
  return 'other';
}

/**
 * The category of a function callgrind named: `Builtins_*` (V8's builtins embedded in node's
 * binary) V8 builtins; anything else in node's binary V8/Node C++; `uws_*.node` uWS;
 * `libc.so*` libc; anything else other.
 */
export function nativeCategory(
  f: Pick<CallgrindFunction, 'object' | 'name'>,
  node: string,
): InstructionCategory {
  const base = basename(f.object);
  if (f.object === node || base === 'node') {
    return f.name.startsWith('Builtins_') ? 'V8 builtins' : 'V8/Node C++';
  }
  if (/^uws_.*\.node$/.test(base)) return 'uWS';
  if (/^libc[.-]/.test(base)) return 'libc';
  return 'other';
}

/** A callgrind function name without its recursion level (`'2`, `--separate-recs`). */
function withoutRecursion(name: string): string {
  return name.replace(/'\d+$/, '');
}

/**
 * A C++ symbol without its parameter list: cut at the first `(` that is not part of
 * `(anonymous namespace)` or of an `operator()`; a C symbol is unchanged; callgrind's recursion
 * level (`'2`) is dropped, so that a function's levels sum up.
 */
export function shortNativeName(name: string): string {
  const symbol = withoutRecursion(name);
  let at = 0;
  for (;;) {
    const open = symbol.indexOf('(', at);
    if (open < 0) return symbol;
    if (symbol.startsWith('(anonymous namespace)', open)) {
      at = open + '(anonymous namespace)'.length;
    } else if (
      symbol.startsWith('operator', open - 'operator'.length) &&
      symbol.startsWith('()', open)
    ) {
      at = open + 2;
    } else {
      return symbol.slice(0, open);
    }
  }
}
