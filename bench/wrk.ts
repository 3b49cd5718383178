import { BenchError } from './bench-error.js';
import { captureOutput } from './capture-output.js';
import { findExecutable } from './find-executable.js';
import type { LoadRequest, LoadResult, LoadTool } from './load-result.js';
import { parseWrkOutput } from './wrk-output.js';

/** Command-line arguments of one wrk run. */
export function wrkArgs(request: LoadRequest): string[] {
  const headers = Object.entries(request.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  return [
    '-t',
    String(request.threads),
    '-c',
    String(request.connections),
    '-d',
    `${request.durationSec}s`,
    '--latency',
    ...headers,
    request.url,
  ];
}

/** wrk when it is on PATH, else undefined. */
export async function findWrk(): Promise<LoadTool | undefined> {
  const path = findExecutable('wrk');
  if (!path) return undefined;
  const { stdout, stderr } = await captureOutput(path, ['-v']);
  const version = /^wrk (\S+)/m.exec(`${stdout}${stderr}`)?.[1] ?? 'unknown';
  return {
    name: 'wrk',
    version,
    async run(request: LoadRequest, signal?: AbortSignal): Promise<LoadResult> {
      const out = await captureOutput(path, wrkArgs(request), signal);
      if (out.code !== 0) {
        throw new BenchError(
          'BENCH_LOAD_TOOL',
          `wrk exited ${out.code}: ${out.stderr || out.stdout}`,
        );
      }
      return parseWrkOutput(out.stdout);
    },
  };
}
