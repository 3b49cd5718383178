/*
 * Upstream connections that survive an unsolicited `100 Continue`.
 *
 * RFC 9110 section 15.2: a client must parse and ignore 1xx answers it did not ask for. undici
 * 7 ignores 102 and 103 but destroys the connection on any 100 ("bad response", in
 * client-h1.js onHeadersComplete), since it never sends `Expect`; the gateway then answered 502
 * to a request the upstream was about to serve. Servers do send it unasked (RFC 7231 let them
 * for PUT and POST, and some still do for any method).
 *
 * So every upstream socket's `read()`, which undici's parser pulls from, drops `100` interim
 * answers found where an answer starts (and keeps looking past 102 and 103, which it passes). A socket knows it is there when undici is about to write
 * a new request on it (the public `undici:client:sendHeaders` diagnostics channel: with one
 * request at a time per connection, no answer is in flight then) and stops looking at the first
 * answer that is not a 100. Past that point a read costs one property check. The filter relies
 * on undici reading sockets with `read()`: the version is pinned and
 * test/integration-upstream-exchange.test.ts fails if that ever changes.
 */

import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

const kInterim = Symbol('proxyauth.interim100');

interface InterimState {
  /** An answer is expected to start at the next byte. */
  atAnswerStart: boolean;
  /** Inside an interim answer's head: `drop` (a 100) or `pass` (102, 103...) up to its blank line. */
  inHead: 'drop' | 'pass' | undefined;
  /** The last bytes of the head so far: its blank line may straddle two reads. */
  tail: Buffer;
  /** Bytes kept back at an answer start, too few to tell a 100 from another answer. */
  held: Buffer | undefined;
}

type FilteredSocket = Socket & { [kInterim]?: InterimState };

subscribe('undici:client:sendHeaders', (message: unknown) => {
  const socket = (message as { socket?: FilteredSocket }).socket;
  const state = socket?.[kInterim];
  if (state !== undefined) state.atAnswerStart = true;
});

const EMPTY = Buffer.alloc(0);
/** `HTTP/1.x NNN` and the space, CR or LF after the code: 13 bytes. */
const STATUS_PREFIX = 13;
const HTTP_1 = 'HTTP/1.';

/**
 * What starts at `at`: `short` while too few bytes came to tell, `100`, another interim answer
 * (`1xx`), or anything else (`final`: a final answer, or bytes undici will judge).
 */
function classify(buf: Buffer, at: number): 'short' | '100' | '1xx' | 'final' {
  const end = Math.min(buf.length, at + STATUS_PREFIX);
  for (let i = 0; at + i < end; i++) {
    const c = buf[at + i]!;
    const ok =
      i < 7
        ? c === HTTP_1.charCodeAt(i)
        : i === 7
          ? c === 0x30 || c === 0x31
          : i === 8
            ? c === 0x20
            : i === 9
              ? c === 0x31
              : i < 12
                ? c >= 0x30 && c <= 0x39
                : c === 0x20 || c === 0x0d || c === 0x0a;
    if (!ok) return 'final';
  }
  if (end - at < STATUS_PREFIX) return 'short';
  return buf[at + 10] === 0x30 && buf[at + 11] === 0x30 ? '100' : '1xx';
}

/**
 * The index just after the blank line that ends a head in `buf` (CRLF CRLF, or bare LFs, which
 * some servers send), or -1.
 */
function endOfHead(buf: Buffer): number {
  const lf = buf.indexOf('\n\n');
  const crlf = buf.indexOf('\n\r\n');
  if (lf === -1) return crlf === -1 ? -1 : crlf + 3;
  if (crlf === -1 || lf < crlf) return lf + 2;
  return crlf + 3;
}

/**
 * What undici's parser gets of `chunk`: the same bytes without the `100` answers found where
 * answers start, before the final one. Other interim answers pass (undici ignores them), and
 * the filter keeps looking after each of them.
 */
export function filterInterim(state: InterimState, chunk: Buffer | null): Buffer | null {
  if (chunk === null) return null;
  const buf = state.held === undefined ? chunk : Buffer.concat([state.held, chunk]);
  state.held = undefined;
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    if (state.inHead !== undefined) {
      const rest = buf.subarray(at);
      const search = state.tail.length === 0 ? rest : Buffer.concat([state.tail, rest]);
      const found = endOfHead(search);
      if (found === -1) {
        if (state.inHead === 'pass') out.push(rest);
        state.tail = Buffer.from(search.subarray(Math.max(0, search.length - 2)));
        break;
      }
      const end = at + found - state.tail.length;
      if (state.inHead === 'pass') out.push(buf.subarray(at, end));
      state.inHead = undefined;
      state.tail = EMPTY;
      at = end;
      continue;
    }
    const kind = classify(buf, at);
    if (kind === 'short') {
      state.held = buf.subarray(at);
      break;
    }
    if (kind === 'final') {
      state.atAnswerStart = false;
      out.push(at === 0 ? buf : buf.subarray(at));
      break;
    }
    state.inHead = kind === '100' ? 'drop' : 'pass';
  }
  if (out.length === 0) return null;
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

/** The filter's state for a new socket (`atAnswerStart` once a request is written on it). */
export function interimState(atAnswerStart = false): InterimState {
  return { atAnswerStart, inHead: undefined, tail: EMPTY, held: undefined };
}

/** Installs the filter on a new upstream socket (also used on tunnels: upstream-proxy.ts). */
export function installInterimFilter(socket: FilteredSocket): void {
  const state = interimState();
  socket[kInterim] = state;
  const read = socket.read;
  socket.read = function filteredRead(this: Socket, size?: number) {
    const chunk = read.call(this, size) as Buffer | null;
    if (!state.atAnswerStart) return chunk;
    // null when all that came was held back or dropped: undici reads again on the next data.
    return filterInterim(state, chunk);
  } as Socket['read'];
}

/**
 * undici's connector (same options as `buildConnector`), with the 100-Continue filter on every
 * socket it opens.
 */
export function interimTolerantConnector(
  options: buildConnector.BuildOptions,
): buildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (...args) => {
      if (args[0] === null && args[1]) installInterimFilter(args[1] as FilteredSocket);
      callback(...args);
    });
}
