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
  readonly help: boolean;
}

/** Usage text printed by `--help`. */
export const USAGE = `usage: npm run bench -- [options]
  --runs N            timed runs per scenario, interleaved across scenarios (default 5)
  --duration S        seconds per timed run (default 10)
  --warmup S          seconds of untimed warm-up per scenario, 0 to skip (default 3)
  --connections C     concurrent keep-alive connections (default 64)
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
  --help              this text`;

const TOOLS: readonly LoadToolChoice[] = ['auto', 'wrk', 'autocannon'];

/** Parses and validates argv; throws `BENCH_BAD_OPTION` on any invalid value. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      runs: { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '64' },
      threads: { type: 'string', default: '2' },
      scenarios: { type: 'string', default: '' },
      tool: { type: 'string', default: 'auto' },
      baseline: { type: 'string' },
      soak: { type: 'string' },
      'soak-interval': { type: 'string', default: '30' },
      profile: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const options: BenchOptions = {
    runs: integer('runs', values.runs, 1),
    durationSec: integer('duration', values.duration, 1),
    warmupSec: integer('warmup', values.warmup, 0),
    connections: integer('connections', values.connections, 1),
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
    help: values.help,
  };
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
    profileScenarioOf(options.scenarios);
  }
  // wrk refuses fewer connections than threads (each thread needs one).
  if (options.threads > options.connections) {
    throw new BenchError('BENCH_BAD_OPTION', '--threads must not exceed --connections');
  }
  return Object.freeze(options);
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
