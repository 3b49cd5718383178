import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the echo upstream saw of a request. */
export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  sha256: string;
}

/**
 * A real HTTP upstream for integration tests:
 * - `/bytes/N` streams N bytes (64 KiB chunks, with backpressure) and a Content-Length;
 * - `/chunked/N` the same without Content-Length;
 * - `/status/N` answers status N with a small JSON body;
 * - `/slow/MS` answers after MS milliseconds;
 * - anything else echoes method, url, headers and the body's size and SHA-256 as JSON.
 */
export async function startUpstream(
  /** Answers some requests itself: returns true when it did (the echo then stays out). */
  custom?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<{
  server: Server;
  origin: string;
  port: number;
  close: () => Promise<void>;
}> {
  const server = createServer((req, res) => {
    if (custom?.(req, res)) return;
    handle(req, res);
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const bytes = /^\/(bytes|chunked)\/(\d+)$/.exec(url.split('?')[0]!);
  if (bytes) return void sendBytes(res, Number(bytes[2]), bytes[1] === 'bytes');
  const status = /^\/status\/(\d{3})$/.exec(url);
  if (status) {
    res.writeHead(Number(status[1]), { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(JSON.stringify({ upstream: 'status', status: Number(status[1]) }));
    return;
  }
  if (url === '/utf8-header') {
    // Node writes header strings as latin1: these two chars are the UTF-8 bytes of 'é'.
    res.writeHead(200, {
      'content-disposition': 'attachment; filename=\u00c3\u00a9t\u00c3\u00a9.txt',
    });
    res.end('ok');
    return;
  }
  const slow = /^\/slow\/(\d+)$/.exec(url);
  if (slow) {
    setTimeout(() => res.end('slow done'), Number(slow[1]));
    return;
  }
  const hash = createHash('sha256');
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    const echo: Echo = {
      method: req.method ?? '',
      url,
      headers: req.headers,
      bodyBytes: size,
      sha256: hash.digest('hex'),
    };
    res.writeHead(200, {
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      connection: 'keep-alive, x-hop',
      'x-hop': 'must-not-pass',
      'x-end-to-end': 'yes',
    });
    res.end(JSON.stringify(echo));
  });
}

const PERIOD = 256;
const MAX_CHUNK = 64 * 1024;
const BASE = Buffer.from(Array.from({ length: MAX_CHUNK + PERIOD }, (_, i) => (i * 31) & 0xff));

/** Deterministic content: byte i is (i * 31) & 0xff (period 256), so a client can check what it got. */
export function patternChunk(offset: number, length: number): Buffer {
  if (length > MAX_CHUNK) throw new RangeError('chunk too large');
  const start = offset % PERIOD;
  return BASE.subarray(start, start + length);
}

async function sendBytes(res: ServerResponse, total: number, withLength: boolean): Promise<void> {
  res.writeHead(
    200,
    withLength
      ? { 'content-type': 'application/octet-stream', 'content-length': total }
      : { 'content-type': 'application/octet-stream' },
  );
  const chunk = 64 * 1024;
  for (let offset = 0; offset < total; offset += chunk) {
    const ok = res.write(patternChunk(offset, Math.min(chunk, total - offset)));
    if (!ok) await new Promise((resolve) => res.once('drain', resolve));
    if (res.destroyed) return;
  }
  res.end();
}
