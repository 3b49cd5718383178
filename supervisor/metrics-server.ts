import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CodedError } from '../shared/coded-error.js';
import type { Logger } from '../shared/log.js';
import type { HealthReport } from './health.js';

/** The metrics listener could not bind its address (METRICS_LISTEN_FAILED). */
export class MetricsListenError extends CodedError {}

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The exposition text and its content type (supervisor/node-metrics.ts). */
  metrics: () => Promise<{ text: string; contentType: string }>;
  /** The readiness of the node now (supervisor/health.ts). */
  ready: () => HealthReport;
  log: Logger;
}

/** Requests on this listener are tiny: a slow client is cut rather than held. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The supervisor's metrics and health listener (node:http: it is not the request path):
 * `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the supervisor answers),
 * `GET /readyz` (200 or 503, JSON). HEAD is answered as GET without a body; other methods get
 * 405 with `Allow`, other paths 404. Resolves once listening, with the port bound; rejects with
 * MetricsListenError when the address cannot be bound.
 */
export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => void answer(options, req, res));
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsListenError(
          'METRICS_LISTEN_FAILED',
          `metrics.listen ${options.host}:${options.port}: cannot listen (${err.code ?? err.message})`,
          { cause: err },
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

async function answer(
  options: MetricsServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0];
  if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz')
    return send(res, req, 404, 'application/json', '{"error":"NOT_FOUND"}\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, req, 405, 'application/json', '{"error":"METHOD_NOT_ALLOWED"}\n');
  }
  if (path === '/healthz') return send(res, req, 200, 'application/json', '{"status":"ok"}\n');
  if (path === '/readyz') {
    const report = options.ready();
    return send(
      res,
      req,
      report.ready ? 200 : 503,
      'application/json',
      `${JSON.stringify(report)}\n`,
    );
  }
  try {
    const { text, contentType } = await options.metrics();
    send(res, req, 200, contentType, text);
  } catch (err) {
    options.log.error('metrics scrape failed', { reason: (err as Error).message });
    send(res, req, 500, 'application/json', '{"error":"INTERNAL"}\n');
  }
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  type: string,
  body: string,
): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}
