import { BenchError } from './bench-error.js';
import type { LoadResult, SocketErrors } from './load-result.js';

// wrk formats times with these suffixes (src/units.c), from microseconds to hours.
const TIME_UNITS_MS: Readonly<Record<string, number>> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const NO_SOCKET_ERRORS: SocketErrors = { connect: 0, read: 0, write: 0, timeout: 0 };

/** Converts a wrk time such as `612.00us`, `1.45ms` or `2.01s` to milliseconds. */
export function parseWrkTime(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new BenchError('BENCH_WRK_OUTPUT', `not a wrk time: ${JSON.stringify(text)}`);
  const ms = Number(match[1]) * (TIME_UNITS_MS[match[2] as string] as number);
  // Drops binary noise (2.01 * 1000 = 2009.9999999999998); wrk prints at most 2 decimals.
  return Math.round(ms * 1e6) / 1e6;
}

/**
 * Extracts throughput, latency percentiles and error counts from the output of
 * `wrk --latency`. Throws `BENCH_WRK_OUTPUT` when a required line is missing, so a changed
 * output format fails loudly instead of reporting zeros.
 */
export function parseWrkOutput(output: string): LoadResult {
  const total = required(
    output,
    /(\d+) requests in (\d+(?:\.\d+)?(?:us|ms|s|m|h)),/,
    'request count',
  );
  const rps = required(output, /^Requests\/sec:\s+(\d+(?:\.\d+)?)\s*$/m, 'Requests/sec');
  const latency = required(output, /^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m, 'latency stats');
  return {
    requests: Number(total[1]),
    durationSec: parseWrkTime(total[2] as string) / 1000,
    requestsPerSec: Number(rps[1]),
    latencyP50Ms: percentile(output, '50'),
    latencyP99Ms: percentile(output, '99'),
    latencyMaxMs: parseWrkTime(latency[3] as string),
    errorResponses: Number(/^\s*Non-2xx or 3xx responses:\s+(\d+)/m.exec(output)?.[1] ?? 0),
    socketErrors: socketErrors(output),
  };
}

function percentile(output: string, pct: string): number {
  const line = new RegExp(`^\\s+${pct}(?:\\.0+)?%\\s+(\\S+)\\s*$`, 'm');
  const match = required(output, line, `${pct}% latency (was wrk run with --latency?)`);
  return parseWrkTime(match[1] as string);
}

function socketErrors(output: string): SocketErrors {
  const m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  if (!m) return NO_SOCKET_ERRORS;
  return { connect: Number(m[1]), read: Number(m[2]), write: Number(m[3]), timeout: Number(m[4]) };
}

function required(output: string, pattern: RegExp, what: string): RegExpExecArray {
  const match = pattern.exec(output);
  if (!match) throw new BenchError('BENCH_WRK_OUTPUT', `wrk output lacks ${what}:\n${output}`);
  return match;
}
