import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LokiPush {
  streams: { stream: Record<string, string>; values: [string, string][] }[];
}

export interface FakeLoki {
  url: string;
  port: number;
  /** Accepted pushes, parsed. */
  pushes: LokiPush[];
  /** `METHOD path content-type` of every request. */
  requests: string[];
  /** The headers of every request, in arrival order (auth and tenant checks). */
  headers: IncomingHttpHeaders[];
  attempts: () => number;
  /** Every line of every accepted push. */
  lines: () => string[];
  close: () => Promise<void>;
}

/**
 * Loki's push endpoint (`POST /loki/api/v1/push`, JSON), answering as `reply` says for the
 * n-th request and its headers (status, delay). Only pushes answered 2xx are recorded.
 */
export async function startFakeLoki(
  reply: (
    n: number,
    headers: IncomingHttpHeaders,
  ) => { status: number; delayMs?: number } = () => ({
    status: 204,
  }),
  port = 0,
): Promise<FakeLoki> {
  const pushes: LokiPush[] = [];
  const requests: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      headers.push(req.headers);
      const { status, delayMs = 0 } = reply(n++, req.headers);
      setTimeout(() => {
        requests.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
        if (status < 300) pushes.push(JSON.parse(Buffer.concat(chunks).toString()) as LokiPush);
        res.writeHead(status).end();
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    pushes,
    requests,
    headers,
    attempts: () => n,
    lines: () => pushes.flatMap((p) => p.streams.flatMap((s) => s.values.map((v) => v[1]))),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
