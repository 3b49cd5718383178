/*
 * The uWS request and response `proxyauth explain` hands to the edge's own code instead of a
 * socket's: openExchange (uws-io.ts) copies the synthetic request exactly as it copies uWS's,
 * and every write the edge makes (status, headers, body, close) lands in the recording
 * response. The refusal explain reports is therefore the bytes an edge would have sent.
 */

import type {
  HttpRequest,
  HttpResponse,
  RecognizedString,
  us_socket_context_t,
} from 'uWebSockets.js';
import { parseIpAddress } from '../shared/ip-match.js';

/** A copy of what uWS would be given (a string is sent as UTF-8, as uWS does). */
function bytesOf(value: RecognizedString): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return Buffer.from(new Uint8Array(value));
  }
  return Buffer.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
}

function text(value: RecognizedString): string {
  return typeof value === 'string' ? value : bytesOf(value).toString('latin1');
}

/** A request as uWS would give it: lower-case header names, URL and query apart. */
export class SyntheticRequest implements HttpRequest {
  readonly #method: string;
  readonly #url: string;
  readonly #query: string;
  readonly #headers: readonly (readonly [string, string])[];

  /** `target`: path and optional `?query`, as on the request line. */
  constructor(method: string, target: string, headers: readonly (readonly [string, string])[]) {
    const q = target.indexOf('?');
    this.#method = method;
    this.#url = q === -1 ? target : target.slice(0, q);
    this.#query = q === -1 ? '' : target.slice(q + 1);
    this.#headers = headers.map(([k, v]) => [k.toLowerCase(), v] as const);
  }

  getHeader(lowerCaseKey: RecognizedString): string {
    const key = text(lowerCaseKey);
    return this.#headers.find(([k]) => k === key)?.[1] ?? '';
  }

  getParameter(): string {
    return '';
  }

  getUrl(): string {
    return this.#url;
  }

  getMethod(): string {
    return this.#method.toLowerCase();
  }

  getCaseSensitiveMethod(): string {
    return this.#method;
  }

  getQuery(): string;
  getQuery(key: string): string | undefined;
  getQuery(key?: string): string | undefined {
    if (key === undefined) return this.#query;
    return new URLSearchParams(this.#query).get(key) ?? undefined;
  }

  forEach(cb: (key: string, value: string) => void): void {
    for (const [k, v] of this.#headers) cb(k, v);
  }

  setYield(): HttpRequest {
    return this;
  }
}

/** What the edge wrote on the recording response. */
export interface RecordedAnswer {
  /** The status line (`403 Forbidden`); '' when nothing was answered. */
  readonly statusLine: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  /** The edge closed the connection after (or instead of) the answer. */
  readonly closed: boolean;
  /** The edge accepted a WebSocket upgrade. */
  readonly upgraded: boolean;
}

/**
 * A uWS response that records. `body` is delivered once, as the last chunk, on a later turn
 * of the event loop after a body handler is set (as uWS delivers data that arrives), and held
 * while paused.
 */
export class RecordingResponse implements HttpResponse {
  // The interface's index signature (uWS lets user data be attached to a response).
  [key: string]: unknown;
  #status = '';
  readonly #headers: [string, string][] = [];
  readonly #chunks: Buffer[] = [];
  #offset = 0;
  #ended = false;
  #closed = false;
  #upgraded = false;
  #paused = false;
  #onData: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  #pending: Buffer | undefined;
  readonly #ip: string;

  /** `ip`: the peer address; `body`: the request body (undefined: none is sent). */
  constructor(ip: string, body: Buffer | undefined) {
    this.#ip = ip;
    this.#pending = body;
  }

  /** What was written so far. */
  answer(): RecordedAnswer {
    return {
      statusLine: this.#status,
      headers: this.#headers,
      body: Buffer.concat(this.#chunks).toString('utf8'),
      closed: this.#closed,
      upgraded: this.#upgraded,
    };
  }

  /** Whether the response ended (an answer, a close or an upgrade). */
  get ended(): boolean {
    return this.#ended || this.#closed || this.#upgraded;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#schedule();
  }

  /**
   * The edge hands uWS its whole head in this one call (worker/uws-io.ts Head): the status line,
   * then `name: value` lines joined by CRLF. It is read back into the status and the headers.
   */
  writeStatus(status: RecognizedString): HttpResponse {
    const lines = text(status).split('\r\n');
    this.#status = lines[0]!;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) this.#headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
    }
    return this;
  }

  writeHeader(key: RecognizedString, value: RecognizedString): HttpResponse {
    this.#headers.push([text(key), text(value)]);
    return this;
  }

  write(chunk: RecognizedString): boolean {
    this.#push(chunk);
    return true;
  }

  end(body?: RecognizedString, closeConnection?: boolean): HttpResponse {
    if (body !== undefined) this.#push(body);
    this.#ended = true;
    if (closeConnection === true) this.#closed = true;
    return this;
  }

  endWithoutBody(_length?: number, closeConnection?: boolean): HttpResponse {
    this.#ended = true;
    if (closeConnection === true) this.#closed = true;
    return this;
  }

  tryEnd(chunk: RecognizedString, totalSize: number): [boolean, boolean] {
    this.#push(chunk);
    if (this.#offset >= totalSize) this.#ended = true;
    return [true, this.#ended];
  }

  close(): HttpResponse {
    this.#closed = true;
    return this;
  }

  getWriteOffset(): number {
    return this.#offset;
  }

  onWritable(): HttpResponse {
    return this;
  }

  /** The client never goes away: nothing to report. */
  onAborted(): HttpResponse {
    return this;
  }

  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): HttpResponse {
    this.#onData = handler;
    this.#schedule();
    return this;
  }

  /** The address as uWS gives it: 16 bytes (IPv4 as IPv4-mapped IPv6); none if not an address. */
  getRemoteAddress(): ArrayBuffer {
    const bytes = parseIpAddress(this.#ip);
    return bytes === null ? new ArrayBuffer(0) : bytes.slice().buffer;
  }

  getRemoteAddressAsText(): ArrayBuffer {
    return bufferOf(this.#ip);
  }

  getProxiedRemoteAddress(): ArrayBuffer {
    return new ArrayBuffer(0);
  }

  getProxiedRemoteAddressAsText(): ArrayBuffer {
    return new ArrayBuffer(0);
  }

  cork(cb: () => void): HttpResponse {
    cb();
    return this;
  }

  upgrade<UserData>(
    _userData: UserData,
    _key: RecognizedString,
    _protocol: RecognizedString,
    _extensions: RecognizedString,
    _context: us_socket_context_t,
  ): void {
    this.#upgraded = true;
  }

  #push(chunk: RecognizedString): void {
    const bytes = bytesOf(chunk);
    this.#chunks.push(bytes);
    this.#offset += bytes.byteLength;
  }

  #schedule(): void {
    if (this.#pending === undefined || this.#onData === undefined) return;
    setImmediate(() => {
      const body = this.#pending;
      const handler = this.#onData;
      if (body === undefined || handler === undefined || this.#paused || this.ended) return;
      this.#pending = undefined;
      handler(bufferOf(body), true);
    });
  }
}

/** A fresh ArrayBuffer holding `data` (uWS hands ArrayBuffers, which the edge copies). */
function bufferOf(data: string | Buffer): ArrayBuffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}
