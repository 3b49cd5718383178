import { parseArgs } from 'node:util';
import { BenchError } from './bench-error.js';
import type { LoadToolChoice } from './load-tool.js';
import { profileScenarioOf } from './profile-scenario.js';

/** Validated command-line options of the runner. */
export interface BenchOptions {
  readonly runs: number;
  readonly durationSec: number;
  readonly warmupSec: number;
  readonly connections: number;
  readonly threads: number;
  readonly scenarios: readonly string[];
  readonly tool: LoadToolChoice;
  /** Root of another built checkout whose gateway runs beside this one (`baseline-*` scenarios). */
  readonly baseline: string | undefined;
  /** `--soak MINUTES`: only gateway-auth-proxy, at steady load, edges' memory sampled. */
  readonly soakMinutes: number | undefined;
  /** Seconds of each back-to-back load run of a soak (a sample after each). */
  readonly soakIntervalSec: number;
  /**
   * `--profile DIR`: one gateway scenario (gateway-auth-proxy, or the one `--scenarios` names),
   * its gateway under `node --cpu-prof` writing into DIR; one warm-up, one timed run, then a
   * summary of the profiles and the CPU per request of each kind of thread.
   */
  readonly profileDir: string | undefined;
  /**
   * `--instructions`: one gateway scenario (gateway-auth-proxy, or the one `--scenarios` names),
   * its gateway with one edge under valgrind's callgrind; `warmupRequests` requests, then
   * `windows` windows of `windowRequests` requests each, the edge's instructions counted in each
   * (with `--baseline`: the same for that build after this one).
   */
  readonly instructions: boolean;
  /** `--windows`: counted windows of `--instructions`. */
  readonly windows: number;
  /** `--window-requests`: requests per counted window. */
  readonly windowRequests: number;
  /** `--warmup-requests`: requests before the first window, not counted (0: none). */
  readonly warmupRequests: number;
  /**
   * `--top N`: with `--instructions`, the N functions with the most instructions per request
   * (self, then inclusive) in each build's median window, and the categories; 0 (the default):
   * none, and the gateway runs without `--perf-basic-prof`.
   */
  readonly top: number;
  readonly help: boolean;
}

/** `--connections` of `--instructions` when not given: few, as a gateway under valgrind is slow. */
export const INSTRUCTIONS_CONNECTIONS = 8;

/** Usage text printed by `--help`. */
export const USAGE = `usage: npm run bench -- [options]
  --runs N            timed runs per scenario, interleaved across scenarios (default 5)
  --duration S        seconds per timed run (default 10)
  --warmup S          seconds of untimed warm-up per scenario, 0 to skip (default 3)
  --connections C     concurrent keep-alive connections (default 64; 8 with --instructions)
  --threads T         load tool threads (default 2)
  --scenarios a,b     only these scenarios (default: all)
  --tool NAME         auto | wrk | autocannon (default auto: wrk, else autocannon)
  --baseline DIR      also run the gateway built in checkout DIR (dist/ built): before/after
                      in the same run, as baseline-* scenarios with ratios to this build
  --soak MINUTES      instead of the comparison: gateway-auth-proxy at steady load for MINUTES
                      (back-to-back runs), the edges' memory (VmRSS) and p99 after each run;
                      reports start (after the warm-up) against end
  --soak-interval S   seconds of each soak run (default 30)
  --profile DIR       instead of the comparison: gateway-auth-proxy (or the one gateway scenario
                      --scenarios names, e.g. gateway-login) with its gateway (supervisor and
                      edges) under node --cpu-prof writing into DIR; one warm-up (--warmup) and
                      one timed run (--duration), a clean stop, then a summary of the profiles
                      (edges' main threads, their worker threads, the supervisor: self time by
                      category, top functions) and the CPU per request of each kind of thread,
                      also in DIR/summary.md
  --instructions      instead of the comparison: gateway-auth-proxy (or the one gateway scenario
                      --scenarios names) with one edge under valgrind's callgrind: the edge's
                      user-space instructions per request, counted in --windows windows of
                      --window-requests requests after --warmup-requests uncounted ones, sent
                      over --connections keep-alive connections; with --baseline DIR the same
                      for that build after this one, and the ratio of the medians
  --windows N         counted windows of --instructions (default 3)
  --window-requests N requests per window of --instructions (default 2000)
  --warmup-requests N requests before the first window of --instructions (default 20000)
  --top N             with --instructions: also the N functions with the most instructions per
                      request (self, and inclusive) in each build's median window, JIT code
                      named from node's --perf-basic-prof map, and the total by category
                      (default 0: none; the gateway then runs without --perf-basic-prof)
  --help              this text`;

const TOOLS: readonly LoadToolChoice[] = ['auto', 'wrk', 'autocannon'];

/** Parses and validates argv; throws `BENCH_BAD_OPTION` on any invalid value. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const { values, tokens } = parseArgs({
    args: [...argv],
    strict: true,
    tokens: true,
    options: {
      runs: { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string' },
      threads: { type: 'string', default: '2' },
      scenarios: { type: 'string', default: '' },
      tool: { type: 'string', default: 'auto' },
      baseline: { type: 'string' },
      soak: { type: 'string' },
      'soak-interval': { type: 'string', default: '30' },
      profile: { type: 'string' },
      instructions: { type: 'boolean', default: false },
      windows: { type: 'string', default: '3' },
      'window-requests': { type: 'string', default: '2000' },
      'warmup-requests': { type: 'string', default: '20000' },
      top: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const given = new Set(tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : [])));
  const defaultConnections = values.instructions ? INSTRUCTIONS_CONNECTIONS : 64;
  const options: BenchOptions = {
    runs: integer('runs', values.runs, 1),
    durationSec: integer('duration', values.duration, 1),
    warmupSec: integer('warmup', values.warmup, 0),
    connections:
      values.connections === undefined
        ? defaultConnections
        : integer('connections', values.connections, 1),
    threads: integer('threads', values.threads, 1),
    scenarios: values.scenarios
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    tool: tool(values.tool),
    baseline: values.baseline,
    soakMinutes: values.soak === undefined ? undefined : integer('soak', values.soak, 1),
    soakIntervalSec: integer('soak-interval', values['soak-interval'], 1),
    profileDir: values.profile,
    instructions: values.instructions,
    windows: integer('windows', values.windows, 1),
    windowRequests: integer('window-requests', values['window-requests'], 1),
    warmupRequests: integer('warmup-requests', values['warmup-requests'], 0),
    top: values.top === undefined ? 0 : integer('top', values.top, 1),
    help: values.help,
  };
  if (options.instructions) {
    checkInstructions(options, given);
    return Object.freeze(options);
  }
  const counted = INSTRUCTIONS_ONLY.filter((name) => given.has(name));
  if (counted.length > 0) {
    throw new BenchError(
      'BENCH_BAD_OPTION',
      `${counted.map((n) => `--${n}`).join(', ')} only go with --instructions`,
    );
  }
  if (options.soakMinutes !== undefined && options.soakIntervalSec > options.soakMinutes * 60) {
    throw new BenchError('BENCH_BAD_OPTION', '--soak-interval must not exceed the soak itself');
  }
  if (options.soakMinutes !== undefined && (options.scenarios.length > 0 || options.baseline)) {
    throw new BenchError(
      'BENCH_BAD_OPTION',
      '--soak runs gateway-auth-proxy alone: it takes neither --scenarios nor --baseline',
    );
  }
  if (options.profileDir !== undefined) {
    if (options.profileDir.trim() === '') {
      throw new BenchError('BENCH_BAD_OPTION', '--profile needs a directory');
    }
    if (options.baseline || options.soakMinutes !== undefined) {
      throw new BenchError(
        'BENCH_BAD_OPTION',
        '--profile runs one gateway scenario of this build: it takes neither --baseline nor --soak',
      );
    }
    profileScenarioOf(options.scenarios, '--profile');
  }
  // wrk refuses fewer connections than threads (each thread needs one).
  if (options.threads > options.connections) {
    throw new BenchError('BENCH_BAD_OPTION', '--threads must not exceed --connections');
  }
  return Object.freeze(options);
}

/** Options that only `--instructions` reads. */
const INSTRUCTIONS_ONLY = ['windows', 'window-requests', 'warmup-requests', 'top'] as const;

/** Options of the timed modes, which `--instructions` (a count of requests) does not read. */
const TIMED_ONLY = ['runs', 'duration', 'warmup', 'threads', 'tool', 'soak-interval'] as const;

/**
 * `--instructions` runs one gateway scenario (of this build, and of `--baseline` when given) by
 * request counts: `--soak`, `--profile` and the timed runs' options are refused.
 */
function checkInstructions(options: BenchOptions, given: ReadonlySet<string>): void {
  if (options.soakMinutes !== undefined || options.profileDir !== undefined) {
    throw new BenchError(
      'BENCH_BAD_OPTION',
      '--instructions is a mode of its own: it takes neither --soak nor --profile',
    );
  }
  const timed = TIMED_ONLY.filter((name) => given.has(name));
  if (timed.length > 0) {
    throw new BenchError(
      'BENCH_BAD_OPTION',
      `--instructions counts requests, not seconds: it does not take ${timed.map((n) => `--${n}`).join(', ')} (use --windows, --window-requests, --warmup-requests)`,
    );
  }
  if (options.baseline !== undefined && options.baseline.trim() === '') {
    throw new BenchError('BENCH_BAD_OPTION', '--baseline needs a directory');
  }
  profileScenarioOf(options.scenarios, '--instructions');
}

function integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new BenchError('BENCH_BAD_OPTION', `--${name} must be an integer >= ${min}, got ${text}`);
  }
  return value;
}

function tool(text: string): LoadToolChoice {
  const found = TOOLS.find((t) => t === text);
  if (!found) throw new BenchError('BENCH_BAD_OPTION', `--tool must be one of ${TOOLS.join(', ')}`);
  return found;
}
