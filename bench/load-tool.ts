import { findAutocannon } from './autocannon.js';
import { BenchError } from './bench-error.js';
import type { LoadTool } from './load-result.js';
import { findWrk } from './wrk.js';

/** Which load tool to use; `auto` prefers wrk and falls back to autocannon. */
export type LoadToolChoice = 'auto' | 'wrk' | 'autocannon';

/**
 * wrk is preferred: it is C, so it takes less CPU from the services under test than a Node
 * load generator. `scratchDir`: where the tool may write files (wrk's Lua scripts), removed by
 * the caller. Throws `BENCH_NO_LOAD_TOOL` when the chosen tool is missing.
 */
export async function detectLoadTool(
  choice: LoadToolChoice,
  scratchDir: string,
): Promise<LoadTool> {
  const wrk = choice === 'autocannon' ? undefined : await findWrk(scratchDir);
  if (wrk) return wrk;
  if (choice === 'auto') console.log('notice: wrk not found on PATH, falling back to autocannon');
  const autocannon = choice === 'wrk' ? undefined : await findAutocannon();
  if (autocannon) return autocannon;
  throw new BenchError(
    'BENCH_NO_LOAD_TOOL',
    `no load tool found for --tool ${choice}: install wrk (apt-get install wrk) or run npm install`,
  );
}
