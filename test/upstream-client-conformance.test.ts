/*
 * Conformance of the gateway's upstream HTTP/1.1 client (issue 13): every case runs against
 * undici's Pool, the reference the gateway used so far (with the gateway's connector, which
 * drops unsolicited `100 Continue`), and against worker/h1-client.ts's H1Pool when that module
 * exists. The upstream is a raw TCP server answering with scripted bytes
 * (test/helpers/hostile-upstream.ts).
 *
 * Each case of the table (test/helpers/conformance-cases.ts) sends a first request, asserts
 * what the client made of the answer, then sends a second request on the same pool that the
 * upstream answers correctly: after an error the second request must go on a new connection,
 * and in every case it must get the upstream's real second answer (bytes left over from the
 * first answer must never become it).
 *
 * `undici: 'lenient'` marks answers undici accepts that a proxy must not relay, `'stricter'`
 * valid answers undici refuses or handles more cautiously: `expect` is asserted for the h1
 * client only, and what undici does (`undiciDoes`) for undici, so a change of undici's
 * behaviour shows up here too.
 */

import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import { interimTolerantConnector } from '../worker/upstream-connector.js';
import {
  answer,
  type H1PoolOptions,
  head,
  type OkExpect,
  SECOND,
  type TableCase,
  table,
} from './helpers/conformance-cases.js';
import { freePort } from './helpers/free-port.js';
import {
  type HostileScript,
  type HostileUpstream,
  startHostileUpstream,
} from './helpers/hostile-upstream.js';
import {
  type DispatcherLike,
  type Hooks,
  type Outcome,
  send,
} from './helpers/recording-handler.js';

interface Client {
  name: 'undici' | 'h1';
  /** Why this client's side is skipped, when it is. */
  skip: string | false;
  make: (options: H1PoolOptions) => DispatcherLike;
}

/** The gateway's undici pool (worker/upstream-pools.ts createPool), from the h1 options. */
function undiciPool(o: H1PoolOptions): DispatcherLike {
  return new Pool(o.origin, {
    connections: null,
    pipelining: o.keepAlive ? 1 : 0,
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    connect: interimTolerantConnector({ timeout: o.connectTimeoutMs }),
    keepAliveTimeout: o.keepAliveTimeoutMs,
    keepAliveMaxTimeout: o.keepAliveMaxMs,
  });
}

/** The h1 client when worker/h1-client.ts exists; a module that fails to load fails the suite. */
async function h1Client(): Promise<Client> {
  if (!existsSync(new URL('../worker/h1-client.ts', import.meta.url))) {
    return {
      name: 'h1',
      skip: 'worker/h1-client.ts does not exist yet',
      make: () => {
        throw new Error('no h1 client');
      },
    };
  }
  // A variable specifier: the module may not exist when this file is type-checked.
  const specifier = '../worker/h1-client.js';
  const mod = (await import(specifier)) as {
    H1Pool: new (options: H1PoolOptions) => DispatcherLike;
  };
  return { name: 'h1', skip: false, make: (o) => new mod.H1Pool(o) };
}

const clients: Client[] = [{ name: 'undici', skip: false, make: undiciPool }, await h1Client()];

/** Codes an h1 client error may carry besides `HPE_*` (the undici codes the gateway maps). */
const KNOWN_CODES = [
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE',
  'UND_ERR_HEADERS_OVERFLOW',
];

const BASE_OPTIONS: Omit<H1PoolOptions, 'origin'> = {
  keepAlive: true,
  maxIdle: 8,
  headersTimeoutMs: 3_000,
  bodyTimeoutMs: 3_000,
  connectTimeoutMs: 2_000,
  keepAliveTimeoutMs: 4_000,
  keepAliveMaxMs: 10_000,
};

/** Late timers are allowed for: the h1 client's may be up to about a second coarse. */
const TIMER_SLACK_MS = 1_200;

function scriptOf(a: TableCase['answer']): HostileScript {
  return Array.isArray(a) ? { chunks: a } : a;
}

const settle = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An upstream answering the first request as scripted and every later one with SECOND. */
async function upstreamFor(t: Test, first: HostileScript): Promise<HostileUpstream> {
  const upstream = await startHostileUpstream((req) =>
    req.seq === 0 ? first : { chunks: [SECOND] },
  );
  t.teardown(() => upstream.close());
  return upstream;
}

function poolFor(
  t: Test,
  client: Client,
  origin: string,
  more: Partial<H1PoolOptions> = {},
): DispatcherLike {
  const pool = client.make({ ...BASE_OPTIONS, origin, ...more });
  t.teardown(() => pool.destroy());
  return pool;
}

function describe(o: Outcome): string {
  const err = o.error ? ` ${String(o.error.code)} ${o.error.message}` : '';
  return `${o.events.join(',')} status=${o.status}${err}${o.hung ? ' HUNG' : ''}`;
}

/** Asserts an error outcome: exactly one onResponseError, no end, an allowed string code. */
function assertError(
  t: Test,
  client: Client,
  o: Outcome,
  codes?: readonly string[],
  head?: boolean,
): void {
  t.notOk(o.hung, `settles (${describe(o)})`);
  t.equal(o.events.filter((e) => e === 'error').length, 1, 'onResponseError once');
  t.notOk(o.events.includes('end'), 'no onResponseEnd');
  if (head)
    t.same(
      o.starts.filter((s) => s < 102 || s >= 200),
      [],
      'no answer was started',
    );
  const code = o.error?.code;
  // undici 7.30.2's parser errors carry no code: client-h1.js builds HTTPParserError with
  // `constants.ERROR[ret]`, a name-to-number map indexed by a number. The gateway maps a
  // missing code to its generic upstream failure; the h1 client must give a string.
  if (client.name === 'undici' && code === undefined && o.error?.name === 'HTTPParserError') {
    t.equal(codes, undefined, 'a parser error where a parser error is expected');
    return;
  }
  t.type(code, 'string', 'the error has a string code');
  if (typeof code !== 'string') return;
  if (codes !== undefined) {
    t.ok(codes.includes(code), `code ${code} is one of ${codes.join(', ')}`);
  } else if (client.name === 'h1') {
    t.ok(code.startsWith('HPE_') || KNOWN_CODES.includes(code), `code ${code} is HPE_* or known`);
  }
}

function assertOk(t: Test, o: Outcome, e: OkExpect): void {
  t.notOk(o.hung, `settles (${describe(o)})`);
  t.notOk(o.error, `no error (${describe(o)})`);
  // onResponseStart may come first for 102 and 103 (undici reports them there; the gateway's
  // relay skips any status below 200), then once for the final answer.
  const starts = o.starts.length;
  t.same(
    o.events.filter((x) => x !== 'data'),
    ['requestStart', ...Array<string>(starts).fill('responseStart'), 'end'],
    'requestStart, responseStart, end',
  );
  t.ok(starts >= 1, 'onResponseStart for the final answer');
  t.same(
    o.starts.slice(0, -1).filter((s) => s < 102 || s > 199),
    [],
    'earlier onResponseStart calls were interim answers other than 100 and 101',
  );
  t.equal(o.status, e.status, 'status');
  if (e.statusMessage !== undefined) t.equal(o.statusMessage, e.statusMessage, 'status message');
  if (e.body !== undefined) {
    const expected = typeof e.body === 'string' ? Buffer.from(e.body, 'latin1') : e.body;
    t.same(o.body, expected, 'body bytes');
  }
  for (const [name, value] of Object.entries(e.headers ?? {})) {
    t.same(o.headers?.[name], value, `header ${name}`);
  }
  if (e.trailers !== undefined && o.trailers !== undefined && Object.keys(o.trailers).length > 0) {
    t.same({ ...o.trailers }, e.trailers, 'trailers passed as sent');
  }
}

/** Sends the second request and checks it got the upstream's real second answer. */
async function assertSecond(
  t: Test,
  pool: DispatcherLike,
  upstream: HostileUpstream,
  reuse: boolean | undefined,
): Promise<void> {
  const o = await send(pool, { method: 'GET', path: '/second' });
  t.notOk(o.error, `the next request succeeds (${describe(o)})`);
  t.equal(o.headers?.['x-answer'], 'second', 'the next request gets the real second answer');
  t.same(o.body.toString('latin1'), 'second', 'with its body');
  const first = upstream.requests.find((r) => r.target === '/first');
  const second = upstream.requests.find((r) => r.target === '/second');
  t.equal(
    upstream.requests.filter((r) => r.target === '/first').length,
    first ? 1 : 0,
    'the first request was sent at most once',
  );
  if (first === undefined || second === undefined || reuse === undefined) return;
  if (reuse) t.equal(second.connection, first.connection, 'the connection was reused');
  else t.not(second.connection, first.connection, 'the next request went on a new connection');
}

async function runCase(t: Test, client: Client, c: TableCase): Promise<void> {
  const upstream = await upstreamFor(t, scriptOf(c.answer));
  const pool = poolFor(t, client, upstream.origin, c.pool);
  const expect = client.name === 'undici' && c.undiciDoes ? c.undiciDoes : c.expect;
  const o = await send(pool, { method: 'GET', path: '/first', ...c.request });
  await settle(c.pauseMs);
  if (process.env.CONFORMANCE_TRACE) t.comment(`${client.name}: ${describe(o)}`);
  const failed = o.error !== undefined;
  if (expect.kind === 'error' && expect.upgrade && o.events.includes('upgrade')) {
    t.same(o.events, ['requestStart', 'upgrade'], 'onRequestUpgrade, nothing else');
    await assertSecond(t, pool, upstream, false);
    return;
  }
  if (expect.kind === 'error' || (expect.kind === 'either' && failed)) {
    assertError(t, client, o, expect.codes, expect.kind === 'error' && expect.head);
    if (expect.codes?.some((code) => code.endsWith('_TIMEOUT'))) {
      const timeout = c.pool?.headersTimeoutMs ?? c.pool?.bodyTimeoutMs ?? 0;
      const limit = timeout + TIMER_SLACK_MS;
      t.ok(o.elapsedMs < limit, `timed out in ${Math.round(o.elapsedMs)} ms (< ${limit})`);
      // The upstream's first bytes come at once, so the timer cannot have fired early.
      t.ok(o.elapsedMs >= timeout - 20, `not before ${timeout} ms`);
    }
    await assertSecond(t, pool, upstream, upstream.requests.length > 0 ? false : undefined);
    return;
  }
  const okExpect = expect.kind === 'ok' ? expect : expect.ok;
  assertOk(t, o, okExpect);
  await assertSecond(t, pool, upstream, okExpect.reuse);
}

for (const [group, cases] of table) {
  t.test(group, async (t) => {
    for (const c of cases) {
      t.test(c.name, async (t) => {
        for (const client of clients) {
          await t.test(client.name, { skip: client.skip }, (t) => runCase(t, client, c));
        }
      });
    }
  });
}

/*
 * Cases that need more than one answer and a follow-up: connection lifecycle, what the
 * upstream receives, and the handler's controller.
 */

interface SpecialCase {
  name: string;
  run: (t: Test, client: Client) => Promise<void>;
}

/** Codes the gateway's relay takes for a stale pooled connection (upstream-relay.ts). */
const STALE = ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'];

/** Checks the second request: the upstream's real answer. */
async function assertServed(t: Test, pool: DispatcherLike, path: string): Promise<void> {
  const o = await send(pool, { method: 'GET', path });
  t.notOk(o.error, `${path} succeeds (${describe(o)})`);
  t.equal(o.headers?.['x-answer'], 'second', `${path} gets the upstream's answer`);
}

/** A request the client must refuse before writing anything. */
async function assertRefused(
  t: Test,
  client: Client,
  options: Dispatcher.DispatchOptions,
): Promise<void> {
  const upstream = await upstreamFor(t, { chunks: [SECOND] });
  const pool = poolFor(t, client, upstream.origin);
  const o = await send(pool, options);
  await settle(50);
  const refused = o.thrown !== undefined || o.error !== undefined;
  t.ok(refused, `refused (${describe(o)}${o.thrown ? ` thrown ${String(o.thrown)}` : ''})`);
  t.notOk(o.events.includes('responseStart'), 'no answer');
  t.same(upstream.requests, [], 'no request reached the upstream');
  t.same(
    upstream.connections.map((c) => c.pending()),
    upstream.connections.map(() => 0),
    'no byte of it was written',
  );
  await assertServed(t, pool, '/after');
}

const lifecycle: SpecialCase[] = [
  {
    name: 'the upstream closes an idle keep-alive connection: next request on a new one',
    run: async (t, client) => {
      const upstream = await startHostileUpstream((req) =>
        req.seq === 0
          ? { chunks: [answer('200 OK', 'hello')], after: 'end', afterDelayMs: 50 }
          : { chunks: [SECOND] },
      );
      t.teardown(() => upstream.close());
      const pool = poolFor(t, client, upstream.origin);
      const first = await send(pool, { method: 'GET', path: '/first' });
      t.equal(first.body.toString(), 'hello');
      await upstream.closedConnections(1);
      await settle(200);
      await assertServed(t, pool, '/second');
      t.equal(upstream.connections[0]?.closed, 'server', 'the upstream closed the first one');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request went on a new connection');
    },
  },
  {
    name: 'the upstream closes a kept connection on the next request: a stale-connection error or a retry',
    run: async (t, client) => {
      // The first request that comes as the second on its connection gets a FIN, no answer.
      let closed: number | undefined;
      const upstream = await startHostileUpstream((req) => {
        if (closed !== undefined || req.indexOnConnection === 0) return { chunks: [SECOND] };
        closed = req.connection;
        return { chunks: [], after: 'end' };
      });
      t.teardown(() => upstream.close());
      const pool = poolFor(t, client, upstream.origin);
      await send(pool, { method: 'GET', path: '/first' });
      await settle();
      const o = await send(pool, { method: 'GET', path: '/second' });
      t.not(closed, undefined, 'the kept connection was used and closed');
      t.notOk(o.events.includes('end') && o.error, 'end or error, not both');
      if (o.error) {
        t.ok(STALE.includes(String(o.error.code)), `a code the gateway retries: ${o.error.code}`);
        t.notOk(o.events.includes('responseStart'), 'no answer was started');
      } else {
        t.equal(o.headers?.['x-answer'], 'second', 'retried on a new connection');
      }
      await assertServed(t, pool, '/third');
      const third = upstream.requests.find((r) => r.target === '/third');
      t.not(third?.connection, closed, 'never on the closed connection');
    },
  },
  {
    name: 'connection refused: ECONNREFUSED, onRequestStart not called',
    run: async (t, client) => {
      const port = await freePort();
      const pool = poolFor(t, client, `http://127.0.0.1:${port}`);
      const o = await send(pool, { method: 'GET', path: '/' });
      t.equal(o.error?.code, 'ECONNREFUSED', describe(o));
      t.same(o.events, ['error'], 'only onResponseError');
    },
  },
  {
    name: 'close(): the request in flight finishes, later ones are refused, sockets closed',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [{ data: answer('200 OK', 'late'), delayMs: 100 }],
      });
      const pool = poolFor(t, client, upstream.origin);
      const inFlight = send(pool, { method: 'GET', path: '/first' });
      await settle(30);
      const closed = pool.close();
      const later = await send(pool, { method: 'GET', path: '/later' });
      t.ok(
        later.thrown !== undefined || later.error !== undefined,
        'a request after close() fails',
      );
      t.notOk(later.events.includes('responseStart'), 'and gets no answer');
      const o = await inFlight;
      t.notOk(o.error, describe(o));
      t.equal(o.body.toString(), 'late', 'the request in flight finished');
      await closed;
      await upstream.closedConnections(1);
      t.equal(upstream.connections[0]?.closed, 'client', 'the client closed its connection');
      t.same(
        upstream.requests.map((r) => r.target),
        ['/first'],
        'nothing else was sent',
      );
    },
  },
  {
    name: 'destroy(): the request in flight fails and its socket is cut',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [`${head('HTTP/1.1 200 OK', ['content-length: 10'])}hel`],
        after: 'hang',
      });
      const pool = poolFor(t, client, upstream.origin);
      let dataSeen: () => void = () => {};
      const seen = new Promise<void>((resolve) => {
        dataSeen = resolve;
      });
      const inFlight = send(
        pool,
        { method: 'GET', path: '/first' },
        { onResponseData: () => dataSeen() },
      );
      await seen;
      await pool.destroy();
      const o = await inFlight;
      await settle();
      t.same(
        o.events.filter((e) => e === 'error' || e === 'end'),
        ['error'],
        `onResponseError once, no end (${describe(o)})`,
      );
      await upstream.closedConnections(1);
      t.equal(upstream.connections[0]?.closed, 'client', 'the client cut the connection');
    },
  },
];

const requestSide: SpecialCase[] = [
  {
    name: 'the head has the given headers, host and connection: keep-alive',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      await send(pool, {
        method: 'GET',
        path: '/p?q=1',
        headers: { 'x-one': '1', 'X-Two': 'two words' },
      });
      const req = upstream.requests[0];
      t.equal(req?.head.split('\r\n')[0], 'GET /p?q=1 HTTP/1.1', 'request line');
      t.same(
        req?.headers.map(([n]) => n).sort(),
        ['connection', 'host', 'x-one', 'x-two'],
        'exactly these headers',
      );
      const get = (name: string) => req?.headers.find(([n]) => n === name)?.[1];
      t.equal(get('host'), `127.0.0.1:${upstream.port}`);
      t.equal(get('connection'), 'keep-alive');
      t.equal(get('x-two'), 'two words');
    },
  },
  {
    name: 'keepAlive false: connection: close, one request per connection',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin, { keepAlive: false });
      await assertServed(t, pool, '/first');
      await assertServed(t, pool, '/second');
      t.same(
        upstream.requests.map((r) => r.headers.find(([n]) => n === 'connection')?.[1]),
        ['close', 'close'],
        'connection: close on each',
      );
      t.same(
        upstream.requests.map((r) => r.connection),
        [0, 1],
        'a connection each',
      );
    },
  },
  {
    name: 'reset: true sends connection: close and the connection is not reused',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [answer('200 OK', 'hello')] });
      const pool = poolFor(t, client, upstream.origin);
      const o = await send(pool, { method: 'GET', path: '/first', reset: true });
      t.equal(o.body.toString(), 'hello');
      await assertServed(t, pool, '/second');
      const first = upstream.requests[0];
      t.equal(first?.headers.find(([n]) => n === 'connection')?.[1], 'close');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request on a new connection');
    },
  },
  {
    name: 'a Buffer body is sent with its content-length',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const payload = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x41]);
      await assertServed(t, pool, '/warm');
      await settle();
      const o = await send(pool, { method: 'POST', path: '/post', body: payload });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[1];
      t.equal(req?.headers.find(([n]) => n === 'content-length')?.[1], String(payload.length));
      t.notOk(
        req?.headers.some(([n]) => n === 'transfer-encoding'),
        'not chunked',
      );
      t.same(req?.body, payload, 'body bytes');
      t.equal(req?.connection, 0, 'on the kept connection');
    },
  },
  {
    name: 'a Readable body with a content-length header is sent as is',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const o = await send(pool, {
        method: 'PUT',
        path: '/put',
        headers: { 'content-length': '11' },
        body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[0];
      t.equal(req?.headers.find(([n]) => n === 'content-length')?.[1], '11');
      t.notOk(
        req?.headers.some(([n]) => n === 'transfer-encoding'),
        'not chunked',
      );
      t.equal(req?.rawBody.toString(), 'hello world', 'the bytes as given');
    },
  },
  {
    name: 'a Readable body without a content-length is sent chunked',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const parts = [Buffer.from('first part, '), Buffer.alloc(0), Buffer.from('second\r\n0\r\n')];
      const o = await send(pool, { method: 'POST', path: '/post', body: Readable.from(parts) });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[0];
      t.equal(req?.headers.find(([n]) => n === 'transfer-encoding')?.[1], 'chunked');
      t.notOk(
        req?.headers.some(([n]) => n === 'content-length'),
        'no content-length',
      );
      t.equal(req?.body.toString(), 'first part, second\r\n0\r\n', 'decoded by the upstream');
      await settle();
      await assertServed(t, pool, '/after');
      t.equal(upstream.requests[1]?.connection, 0, 'the connection is still in sync');
    },
  },
  ...(
    [
      ['CR LF in a header value', { 'x-a': 'a\r\nx-injected: 1' }],
      ['bare LF in a header value', { 'x-a': 'a\nx-injected: 1' }],
      ['bare CR in a header value', { 'x-a': 'a\rb' }],
      ['NUL in a header value', { 'x-a': 'a\0b' }],
      ['a space in a header name', { 'x a': '1' }],
      ['CR LF in a header name', { 'x-a\r\nx-injected': '1' }],
    ] as const
  ).map(
    ([what, headers]): SpecialCase => ({
      name: `${what} is refused, nothing written`,
      run: (t, client) => assertRefused(t, client, { method: 'GET', path: '/', headers }),
    }),
  ),
];

const controller: SpecialCase[] = [
  {
    name: 'pause() in onResponseData holds the data until resume()',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [
          `${head('HTTP/1.1 200 OK', ['content-length: 10'])}hello`,
          { data: 'world', delayMs: 50 },
        ],
      });
      const pool = poolFor(t, client, upstream.origin);
      let pausedAt = 0;
      let resumedAt = 0;
      const dataAt: number[] = [];
      const hooks: Hooks = {
        onResponseData(ctl) {
          dataAt.push(performance.now());
          if (pausedAt !== 0) return;
          pausedAt = performance.now();
          ctl.pause();
          setTimeout(() => {
            resumedAt = performance.now();
            ctl.resume();
          }, 300);
        },
      };
      const o = await send(pool, { method: 'GET', path: '/first' }, hooks);
      t.notOk(o.error, describe(o));
      t.equal(o.body.toString(), 'helloworld', 'the whole body');
      t.ok(resumedAt > 0, 'resumed');
      t.same(
        dataAt.slice(1).filter((at) => at < resumedAt),
        [],
        'no data between pause() and resume()',
      );
      await assertServed(t, pool, '/second');
    },
  },
  {
    name: 'abort() during the body: onResponseError with the reason, connection not reused',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [`${head('HTTP/1.1 200 OK', ['content-length: 10'])}hel`],
        after: 'hang',
      });
      const pool = poolFor(t, client, upstream.origin);
      const reason = Object.assign(new Error('client went away'), { code: 'TEST_ABORT' });
      const o = await send(
        pool,
        { method: 'GET', path: '/first' },
        { onResponseData: (ctl) => ctl.abort(reason) },
      );
      await settle();
      t.equal(o.error, reason, 'the abort reason itself');
      t.same(
        o.events.filter((e) => e === 'error' || e === 'end'),
        ['error'],
        'onResponseError once, no end',
      );
      await assertServed(t, pool, '/second');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request on a new connection');
    },
  },
];

const special: [string, SpecialCase[]][] = [
  ['connection lifecycle', lifecycle],
  ['request side', requestSide],
  ['controller', controller],
];

for (const [group, cases] of special) {
  t.test(group, async (t) => {
    for (const c of cases) {
      t.test(c.name, async (t) => {
        for (const client of clients) {
          await t.test(client.name, { skip: client.skip }, (t) => c.run(t, client));
        }
      });
    }
  });
}
