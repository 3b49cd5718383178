import { GatewayError, refusal } from '../shared/errors.js';
import { MAX_LOG_LINES } from '../shared/ipc.js';
import type { RequestContext } from './request-context.js';
import { AskError } from './supervisor-link.js';
import { sendBody } from './uws-io.js';

/** Lines GET /adm/logs returns without `limit`. */
export const DEFAULT_LOG_LINES = 1000;
const ASK_TIMEOUT_MS = 2_000;

/**
 * GET /adm/logs?limit=N (admin checks done by the endpoint's steps, endpoints.ts): the node's
 * newest N log lines (default 1000, 1 - 10000), oldest first and newest last, as text/plain,
 * one line each, as the original answered. The ring lives in the supervisor (one per node,
 * `log.type: "http"`); the edge asks for it. 404 LOGS_NOT_KEPT when the node keeps none, 503
 * LOGS_UNAVAILABLE when the supervisor does not answer.
 */
export async function handleLogs(ctx: RequestContext): Promise<void> {
  const limit = limitOf(ctx.ex.query);
  let answer: { kept: boolean; lines: string[] };
  try {
    answer = await ctx.services.supervisor.ask({ type: 'recent-logs', limit }, ASK_TIMEOUT_MS);
  } catch (err) {
    if (!(err instanceof AskError)) throw err;
    ctx.services.log.warn('log lines could not be fetched', { code: err.code });
    throw new GatewayError('LOGS_UNAVAILABLE', { cause: err });
  }
  if (!answer.kept) throw refusal('LOGS_NOT_KEPT');
  const body = answer.lines.length === 0 ? '' : `${answer.lines.join('\n')}\n`;
  sendBody(ctx.ex, 200, 'text/plain; charset=utf-8', body);
}

function limitOf(query: string): number {
  let limit: number | undefined;
  for (const [name, value] of new URLSearchParams(query)) {
    if (name !== 'limit') {
      throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 64))}`);
    }
    if (limit !== undefined) throw badRequest('query parameter limit is repeated');
    if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1 || Number(value) > MAX_LOG_LINES) {
      throw badRequest(`limit must be a whole number from 1 to ${MAX_LOG_LINES}`);
    }
    limit = Number(value);
  }
  return limit ?? DEFAULT_LOG_LINES;
}

function badRequest(detail: string): GatewayError {
  return new GatewayError('BAD_REQUEST', { detail });
}
