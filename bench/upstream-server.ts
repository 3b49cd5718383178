// Child process entry: the upstream every scenario ends at. It runs in its own process so that
// it does not share an event loop with the load tool, the runner or the gateway.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import {
  benchPage,
  ECHO_PATH,
  echoAnswer,
  LARGE_PATH,
  largeBody,
  PAGE_PATHS,
  UPSTREAM_BODY,
  UPSTREAM_PATH,
} from './scenarios.js';
import type { UpstreamMessage } from './upstream-message.js';

const body = Buffer.from(UPSTREAM_BODY);
const notFound = Buffer.from('not found');

/** The HTML pages, encoded once: [body, Content-Encoding or undefined]. */
const pages = new Map<string, [Buffer, string | undefined]>([
  [PAGE_PATHS.placeholder, [Buffer.from(benchPage(true)), undefined]],
  [PAGE_PATHS.plain, [Buffer.from(benchPage(false)), undefined]],
  [PAGE_PATHS.placeholderGzip, [gzipSync(benchPage(true)), 'gzip']],
  [PAGE_PATHS.plainGzip, [gzipSync(benchPage(false)), 'gzip']],
]);
const large = Buffer.from(largeBody());

/** Reads the whole request body and answers its size: proof that a proxy forwarded it. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    const answer = Buffer.from(echoAnswer(bytes));
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': answer.length });
    res.end(answer);
  });
}

const server = createServer((req, res) => {
  if (req.url === ECHO_PATH && req.method === 'POST') return echo(req, res);
  if (req.url === LARGE_PATH) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': large.length });
    res.end(large);
    return;
  }
  const page = pages.get(req.url ?? '');
  if (page !== undefined) {
    const [bytes, coding] = page;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': bytes.length,
      ...(coding === undefined ? {} : { 'content-encoding': coding }),
    });
    res.end(bytes);
    return;
  }
  const ok = req.url === UPSTREAM_PATH;
  res.writeHead(ok ? 200 : 404, {
    'content-type': 'text/plain',
    'content-length': ok ? body.length : notFound.length,
  });
  res.end(ok ? body : notFound);
});

// Load tools hold connections open for a whole run; the default 5 s would close idle pool
// connections (nginx, gateway) between runs and count reconnects as load.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const message: UpstreamMessage = { type: 'listening', port };
  process.send?.(message);
});

// The runner owns this process: when its IPC channel goes away (runner killed), leave too.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
