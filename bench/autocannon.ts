import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './bench-error.js';
import { captureOutput } from './capture-output.js';
import type { LoadRequest, LoadResult, LoadTool } from './load-result.js';
import { packageRoot } from './paths.js';

/** The fields of autocannon's `--json` report that the bench reads. */
interface AutocannonReport {
  readonly duration: number;
  readonly requests: { readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

/** Command-line arguments of one autocannon run; `threads` become worker threads. */
export function autocannonArgs(request: LoadRequest): string[] {
  const headers = Object.entries(request.headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
  const workers = request.threads > 1 ? ['-w', String(request.threads)] : [];
  return [
    '--json',
    '-c',
    String(request.connections),
    '-d',
    String(request.durationSec),
    ...workers,
    ...headers,
    ...(request.method ? ['-m', request.method] : []),
    ...(request.body !== undefined ? ['-b', request.body] : []),
    request.url,
  ];
}

/**
 * Maps autocannon's report onto {@link LoadResult}. autocannon has no per-kind socket error
 * counts: its non-timeout errors are reported as read errors. Its latencies have 1 ms resolution.
 */
export function fromAutocannonReport(report: AutocannonReport): LoadResult {
  return {
    requests: report.requests.total,
    durationSec: report.duration,
    requestsPerSec: report.duration > 0 ? report.requests.total / report.duration : 0,
    latencyP50Ms: report.latency.p50,
    latencyP99Ms: report.latency.p99,
    latencyMaxMs: report.latency.max,
    errorResponses: report.non2xx,
    socketErrors: {
      connect: 0,
      read: Math.max(0, report.errors - report.timeouts),
      write: 0,
      timeout: report.timeouts,
    },
  };
}

/** autocannon from this package's devDependencies, run as a child process; else undefined. */
export async function findAutocannon(): Promise<LoadTool | undefined> {
  const root = packageRoot();
  const bin = join(root, 'node_modules', '.bin', 'autocannon');
  if (!existsSync(bin)) return undefined;
  const pkg = join(root, 'node_modules', 'autocannon', 'package.json');
  const version = (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
  return {
    name: 'autocannon',
    version,
    async run(request: LoadRequest, signal?: AbortSignal): Promise<LoadResult> {
      const out = await captureOutput(bin, autocannonArgs(request), signal);
      if (out.code !== 0) {
        throw new BenchError('BENCH_LOAD_TOOL', `autocannon exited ${out.code}: ${out.stderr}`);
      }
      return fromAutocannonReport(JSON.parse(out.stdout) as AutocannonReport);
    },
  };
}
