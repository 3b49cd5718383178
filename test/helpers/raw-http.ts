import { connect, type Socket } from 'node:net';

/** One HTTP/1.1 response as parsed off the wire. */
export interface RawResponse {
  status: number;
  /** The reason phrase as sent. */
  reason: string;
  /** Header names lower-cased; repeated headers keep every value. */
  headers: Map<string, string[]>;
  body: Buffer;
}

/** What a raw exchange produced: every complete response, and how the connection ended. */
export interface RawResult {
  responses: RawResponse[];
  /** Bytes left after the last complete response (a truncated answer, or garbage). */
  rest: Buffer;
  /** The server closed (or reset) the connection before the exchange's deadline. */
  closed: boolean;
}

/**
 * A client that writes exactly the bytes it is given: for inputs no HTTP library would send
 * (duplicate Content-Length, odd Transfer-Encoding, pipelined requests). Writes `parts` in order
 * (`gapMs` apart; with `sequential`, part i only once i complete answers came, up to `waitMs`),
 * then collects what the server sends until it closes or `waitMs` passes without new data.
 * `methods` lists the request methods in order, so that answers to HEAD are parsed without a
 * body.
 */
export async function rawExchange(
  port: number,
  parts: readonly (string | Buffer)[],
  options: {
    methods?: readonly string[];
    waitMs?: number;
    gapMs?: number;
    sequential?: boolean;
  } = {},
): Promise<RawResult> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  let closed = false;
  let lastData = Date.now();
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    lastData = Date.now();
  });
  socket.on('error', () => {
    closed = true;
  });
  socket.on('close', () => {
    closed = true;
  });
  const waitMs = options.waitMs ?? 500;
  for (const [i, part] of parts.entries()) {
    if (i > 0 && options.gapMs) await sleep(options.gapMs);
    if (i > 0 && options.sequential) {
      const deadline = Date.now() + waitMs;
      const answered = () =>
        parseResponses(Buffer.concat(chunks), options.methods ?? []).responses.filter(
          (r) => r.status >= 200,
        ).length;
      while (!closed && answered() < i && Date.now() < deadline) await sleep(10);
    }
    if (!closed) socket.write(part);
  }
  while (!closed && Date.now() - lastData < waitMs) await sleep(20);
  socket.destroy();
  return { ...parseResponses(Buffer.concat(chunks), options.methods ?? []), closed };
}

/** Opens a connection kept for several raw exchanges (keep-alive checks). */
export async function rawConnection(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** A connection whose answers are each written while the client sits paused. */
export interface PausedClient {
  /**
   * Sends `request` with the client paused, resumes it after `pauseMs`, then waits up to
   * `timeoutMs` for a whole answer; what follows the answers stays for the next ask.
   */
  ask(
    request: string,
    pauseMs: number,
    timeoutMs: number,
  ): Promise<{ responses: RawResponse[]; rest: Buffer }>;
  close(): void;
}

/** Opens a {@link PausedClient} connection; `methods` as in {@link parseResponses}. */
export async function pausedClient(
  port: number,
  methods: readonly string[] = [],
): Promise<PausedClient> {
  const socket = await rawConnection(port);
  let data: Buffer = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d]);
  });
  return {
    async ask(request, pauseMs, timeoutMs) {
      socket.pause();
      socket.write(request);
      await sleep(pauseMs);
      socket.resume();
      const deadline = Date.now() + timeoutMs;
      while (parseResponses(data, methods).responses.length === 0 && Date.now() < deadline) {
        await sleep(10);
      }
      const parsed = parseResponses(data, methods);
      data = parsed.rest;
      return parsed;
    },
    close: () => socket.destroy(),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Splits a byte stream into complete HTTP/1.1 responses (Content-Length or chunked bodies). */
export function parseResponses(
  data: Buffer,
  methods: readonly string[],
): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  while (offset < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', offset);
    if (headEnd === -1) break;
    const lines = data.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
    if (!m) break;
    const status = Number(m[1]);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    let bodyStart = headEnd + 4;
    let body: Buffer = Buffer.alloc(0);
    const bodiless =
      methods[responses.length] === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (!bodiless) {
      const length = headers.get('content-length')?.[0];
      if (length !== undefined) {
        const end = bodyStart + Number(length);
        if (end > data.length) break;
        body = data.subarray(bodyStart, end);
        bodyStart = end;
      } else if (headers.get('transfer-encoding')?.[0] === 'chunked') {
        const parts: Buffer[] = [];
        let at = bodyStart;
        let complete = false;
        for (;;) {
          const lineEnd = data.indexOf('\r\n', at);
          if (lineEnd === -1) break;
          const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
          if (size === 0) {
            at = lineEnd + 4;
            complete = at <= data.length;
            break;
          }
          parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        if (!complete) break;
        body = Buffer.concat(parts);
        bodyStart = at;
      }
    }
    responses.push({ status, reason: m[2] ?? '', headers, body });
    offset = bodyStart;
  }
  return { responses, rest: data.subarray(offset) };
}
