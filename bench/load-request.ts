import type { LoadRequest } from './load-result.js';
import type { BenchOptions } from './options.js';
import type { Scenario } from './scenarios.js';
import type { Target } from './service.js';

/**
 * What the load tool is asked for one run of `scenario`: its target, the scenario's own
 * connection count when it has one (else `--connections`), and no more load threads than
 * connections (wrk needs one connection per thread).
 */
export function loadRequestFor(
  scenario: Scenario,
  target: Target,
  options: Pick<BenchOptions, 'connections' | 'threads'>,
  durationSec: number,
): LoadRequest {
  const connections = scenario.connections ?? options.connections;
  return {
    url: target.url,
    headers: target.headers,
    method: target.method,
    body: target.body,
    connections,
    threads: Math.min(options.threads, connections),
    durationSec,
  };
}
