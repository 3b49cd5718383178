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
 * answers found where an answer starts. A socket knows it is there when undici is about to write
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
  /** Inside a `100` answer's header block: dropping bytes up to its blank line. */
  skipping: boolean;
  /** Bytes kept back: an answer start too short to judge, or the end of a skipped block. */
  held: Buffer | undefined;
}

type FilteredSocket = Socket & { [kInterim]?: InterimState };

subscribe('undici:client:sendHeaders', (message: unknown) => {
  const socket = (message as { socket?: FilteredSocket }).socket;
  const state = socket?.[kInterim];
  if (state !== undefined) state.atAnswerStart = true;
});

/** `HTTP/1.x 100` and the space or CR after the code: 13 bytes. */
const STATUS_PREFIX = 13;
const END_OF_HEAD = Buffer.from('\r\n\r\n');

/**
 * Whether `buf` at `at` holds the status line start `HTTP/1.0 100` or `HTTP/1.1 100`, then a
 * space or CR (so `1000` is not `100`), as far as `buf` goes: a prefix of it matches too.
 */
function matches100(buf: Buffer, at: number, end: number): boolean {
  const pattern = 'HTTP/1.? 100';
  for (let i = 0; i < STATUS_PREFIX && at + i < end; i++) {
    const c = buf[at + i];
    if (i === 7) {
      if (c !== 0x30 && c !== 0x31) return false;
    } else if (i === 12) {
      if (c !== 0x20 && c !== 0x0d) return false;
    } else if (c !== pattern.charCodeAt(i)) return false;
  }
  return true;
}

/** What undici's parser gets of `chunk`: the same bytes without leading `100` answers. */
export function filterInterim(state: InterimState, chunk: Buffer | null): Buffer | null {
  if (chunk === null) return null;
  const buf = state.held === undefined ? chunk : Buffer.concat([state.held, chunk]);
  state.held = undefined;
  let at = 0;
  for (;;) {
    if (state.skipping) {
      const end = buf.indexOf(END_OF_HEAD, at);
      if (end === -1) {
        // Keep the last 3 bytes: the blank line may straddle two reads.
        state.held = buf.subarray(Math.max(at, buf.length - 3));
        return null;
      }
      at = end + END_OF_HEAD.length;
      state.skipping = false;
      continue;
    }
    if (!matches100(buf, at, buf.length)) {
      state.atAnswerStart = false;
      return at === 0 ? buf : buf.subarray(at);
    }
    if (buf.length - at < STATUS_PREFIX) {
      // Could still become `HTTP/1.1 100`: wait for more bytes.
      state.held = buf.subarray(at);
      return null;
    }
    state.skipping = true;
    // The blank line is searched from the CR or space after the code.
    at += STATUS_PREFIX - 1;
  }
}

/** Installs the filter on a new upstream socket. */
function install(socket: FilteredSocket): void {
  const state: InterimState = { atAnswerStart: false, skipping: false, held: undefined };
  socket[kInterim] = state;
  const read = socket.read;
  socket.read = function filteredRead(this: Socket, size?: number) {
    const chunk = read.call(this, size) as Buffer | null;
    if (!state.atAnswerStart) return chunk;
    // null when all that came was a dropped 100 answer: undici reads again on the next data.
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
      if (args[0] === null && args[1]) install(args[1] as FilteredSocket);
      callback(...args);
    });
}
