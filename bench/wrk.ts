import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './bench-error.js';
import { captureOutput } from './capture-output.js';
import { findExecutable } from './find-executable.js';
import type { LoadRequest, LoadResult, LoadTool } from './load-result.js';
import { parseWrkOutput } from './wrk-output.js';

/** Command-line arguments of one wrk run. */
export function wrkArgs(request: LoadRequest, script?: string): string[] {
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
    ...(script === undefined ? [] : ['-s', script]),
    request.url,
  ];
}

/**
 * wrk has no option for the method or a body: a Lua script sets them. Written per distinct
 * request into `dir`; undefined for a plain GET.
 */
async function requestScript(request: LoadRequest, dir: string): Promise<string | undefined> {
  if ((request.method ?? 'GET') === 'GET' && request.body === undefined) return undefined;
  const lua = [
    `wrk.method = ${JSON.stringify(request.method ?? 'GET')}`,
    ...(request.body === undefined ? [] : [`wrk.body = ${JSON.stringify(request.body)}`]),
    '',
  ].join('\n');
  const file = join(dir, `wrk-${createHash('sha256').update(lua).digest('hex').slice(0, 16)}.lua`);
  await writeFile(file, lua);
  return file;
}

/**
 * wrk when it is on PATH, else undefined. Its scripts go into `scriptDir`, which the caller
 * removes: a login's script holds the run's password, and nothing else would delete it.
 */
export async function findWrk(scriptDir: string): Promise<LoadTool | undefined> {
  const path = findExecutable('wrk');
  if (!path) return undefined;
  const { stdout, stderr } = await captureOutput(path, ['-v']);
  const version = /^wrk (\S+)/m.exec(`${stdout}${stderr}`)?.[1] ?? 'unknown';
  return {
    name: 'wrk',
    version,
    async run(request: LoadRequest, signal?: AbortSignal): Promise<LoadResult> {
      const script = await requestScript(request, scriptDir);
      const out = await captureOutput(path, wrkArgs(request, script), signal);
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
