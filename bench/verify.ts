import { BenchError } from './bench-error.js';
import type { LoadResult } from './load-result.js';
import type { ExpectedAnswer, Scenario } from './scenarios.js';
import type { Target } from './service.js';

const CHECK_REQUESTS = 5;

/** Why an answer is wrong, or undefined when it matches. */
export function checkAnswer(
  expect: ExpectedAnswer,
  status: number,
  body: string,
  headers?: Headers,
): string | undefined {
  if (status !== expect.status) {
    return `expected status ${expect.status}, got ${status} (body: ${JSON.stringify(body.slice(0, 200))})`;
  }
  if (expect.body !== undefined && body !== expect.body) {
    return `expected body ${JSON.stringify(expect.body.slice(0, 200))}, got ${JSON.stringify(body.slice(0, 200))}`;
  }
  if (expect.bodyPattern !== undefined && !expect.bodyPattern.test(body)) {
    return `expected a body matching ${String(expect.bodyPattern).slice(0, 200)}, got ${JSON.stringify(body.slice(0, 200))}`;
  }
  for (const [name, value] of Object.entries(expect.headers ?? {})) {
    const got = headers?.get(name) ?? null;
    if (got !== value) return `expected ${name}: ${value}, got ${got}`;
  }
  return undefined;
}

/**
 * Sends a few real requests and checks status and body before anything is timed: a fast wrong
 * answer (404, 502, a 401 where a 200 was expected) must not end up in the table.
 * Throws `BENCH_WRONG_ANSWER`.
 */
export async function verifyScenario(scenario: Scenario, target: Target): Promise<void> {
  for (let i = 0; i < CHECK_REQUESTS; i++) {
    const res = await fetch(target.url, {
      method: target.method ?? 'GET',
      headers: target.headers,
      body: target.body,
      signal: AbortSignal.timeout(5000),
    });
    const problem = checkAnswer(scenario.expect, res.status, await res.text(), res.headers);
    if (problem) {
      throw new BenchError(
        'BENCH_WRONG_ANSWER',
        `${scenario.name}: ${target.method ?? 'GET'} ${target.url}: ${problem}`,
      );
    }
  }
}

/**
 * Why a timed run cannot be trusted, or undefined. The load tool only counts statuses >= 400,
 * so a 200 scenario must have none and a 4xx scenario must have nothing else.
 */
export function checkLoadResult(scenario: Scenario, result: LoadResult): string | undefined {
  if (result.requests === 0) return 'no request completed';
  const wanted = scenario.expect.status >= 400 ? result.requests : 0;
  if (result.errorResponses !== wanted) {
    return `${result.errorResponses} of ${result.requests} responses had status >= 400, expected ${wanted}`;
  }
  return undefined;
}

/** Socket errors worth a warning next to a run's numbers, or undefined when there were none. */
export function describeSocketErrors(result: LoadResult): string | undefined {
  const e = result.socketErrors;
  if (e.connect + e.read + e.write + e.timeout === 0) return undefined;
  return `socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`;
}
