// Failure handling of the own upstream client (worker/h1-client.ts) through the gateway:
// upstreams that stall mid-head or mid-body, flood interim answers, send a head too large or
// drip it byte by byte, reset, or are down. Each client gets a clean status (or, once the head
// was relayed, a cut connection) within the route's deadline plus the 250 ms sweep, and the
// next request on the route is served.
import t, { type Test } from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { type HostileChunk, startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, rawConnection } from './helpers/raw-http.js';

const TIMEOUT = 800;
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

function drip(text: string, gapMs: number): HostileChunk[] {
  return [...text].map((c) => ({ data: c, delayMs: gapMs }));
}

const up = await startHostileUpstream((req) => {
  const kind = req.target.split('/')[1] ?? '';
  switch (kind) {
    case 'stall-head':
      return { chunks: ['HTTP/1.1 200 OK\r\ncontent-le'], after: 'hang' };
    case 'stall-body':
      return { chunks: ['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf'], after: 'hang' };
    case 'interim-flood':
      // An interim answer every 50 ms, for longer than the deadline: no final answer ever.
      return {
        chunks: Array.from({ length: 60 }, () => ({
          data: 'HTTP/1.1 102 Processing\r\n\r\n',
          delayMs: 50,
        })),
        after: 'hang',
      };
    case 'interim-burst':
      // Ten thousand interim answers in one go, then the final one.
      return { chunks: ['HTTP/1.1 100 Continue\r\n\r\n'.repeat(10_000) + OK] };
    case 'big-head':
      return {
        chunks: [
          `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(17 * 1024)}\r\ncontent-length: 2\r\n\r\nok`,
        ],
      };
    case 'drip-fast':
      // The whole answer byte by byte, within the deadline.
      return { chunks: drip(OK, 5) };
    case 'drip-slow':
      // A head dripped for longer than the deadline: the deadline is the head's, not a byte's.
      return {
        chunks: drip(
          `HTTP/1.1 200 OK\r\nx-pad: ${'p'.repeat(60)}\r\ncontent-length: 2\r\n\r\nok`,
          20,
        ),
      };
    case 'reset':
      return { chunks: [], after: 'destroy' };
    case 'reset-mid-body':
      return {
        chunks: ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome'],
        after: 'destroy',
        afterDelayMs: 20,
      };
    default:
      return { chunks: [OK] };
  }
});

// A backend that accepts every connection and resets it.
const resetter = await startHostileUpstream(() => ({ chunks: [], after: 'destroy' }));

const gw: RunningGateway = await startGateway({
  // No upstream keep-alive: every request on its own connection, said `connection: close`.
  config: { client_timeout: TIMEOUT, max_idle_per_host: 0 },
  routes: `routes:
  - prefix: /h
    target: ${up.origin}
    secure: false
  - prefix: /down
    target: http://127.0.0.1:1
    secure: false
  - prefix: /lb
    target: http://127.0.0.1:1
    backends: [${resetter.origin}, ${up.origin}]
    secure: false
`,
});
t.teardown(async () => {
  await gw.stop();
  await up.close();
  await resetter.close();
});

interface Timed {
  /** 0: no complete answer. */
  status: number;
  ms: number;
  body: string;
  /** The gateway closed the connection. */
  closed: boolean;
  /** Bytes after the last complete answer (a cut one). */
  rest: string;
}

/**
 * One request on a raw connection: resolves at the first complete answer, at the close, or
 * after 4 s, with how long that took.
 */
async function timed(path: string, method = 'GET'): Promise<Timed> {
  const socket = await rawConnection(gw.port);
  const started = performance.now();
  socket.write(`${method} ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
  let data = Buffer.alloc(0);
  let closed = false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 4000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (parseResponses(data, [method]).responses.length > 0) done();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
  });
  const ms = performance.now() - started;
  socket.destroy();
  const { responses, rest } = parseResponses(data, [method]);
  const res = responses[0];
  return {
    status: res?.status ?? 0,
    ms,
    body: res?.body.toString('latin1') ?? '',
    closed,
    rest: rest.toString('latin1'),
  };
}

async function stillServes(t: Test): Promise<void> {
  const after = await timed('/h/ok');
  t.equal(after.status, 200, 'the next request on the route is served');
}

t.test('an upstream that stalls mid-head: 504 at the deadline', async (t) => {
  const r = await timed('/h/stall-head');
  t.equal(r.status, 504);
  t.ok(r.ms >= TIMEOUT - 260 && r.ms < TIMEOUT + 800, `after ${Math.round(r.ms)} ms`);
  await stillServes(t);
});

t.test(
  'an upstream that stalls mid-body: the client connection is cut at the deadline',
  async (t) => {
    const r = await timed('/h/stall-body');
    t.ok(r.closed, 'cut');
    t.equal(r.status, 0, 'no complete answer');
    t.match(
      r.rest,
      /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhalf$/,
      'the head and the bytes that came',
    );
    t.ok(r.ms >= TIMEOUT - 260 && r.ms < TIMEOUT + 800, `after ${Math.round(r.ms)} ms`);
    await stillServes(t);
  },
);

t.test('a flood of interim answers does not hold a request past the deadline', async (t) => {
  const r = await timed('/h/interim-flood');
  t.equal(r.status, 504);
  t.ok(r.ms < TIMEOUT + 800, `after ${Math.round(r.ms)} ms`);
  await stillServes(t);
});

t.test('ten thousand interim answers, then the final one: the final one arrives', async (t) => {
  const r = await timed('/h/interim-burst');
  t.equal(r.status, 200);
  t.equal(r.body, 'ok');
});

t.test('a head above 16 KiB: 502, nothing of it relayed', async (t) => {
  const r = await timed('/h/big-head');
  t.equal(r.status, 502);
  t.notMatch(r.body, /aaaa/);
  await stillServes(t);
});

t.test('an answer dripped byte by byte within the deadline arrives whole', async (t) => {
  const r = await timed('/h/drip-fast');
  t.equal(r.status, 200);
  t.equal(r.body, 'ok');
});

t.test('a head dripped for longer than the deadline: 504, however steady the drip', async (t) => {
  const r = await timed('/h/drip-slow');
  t.equal(r.status, 504);
  t.ok(r.ms < TIMEOUT + 800, `after ${Math.round(r.ms)} ms`);
});

t.test(
  'an upstream that resets: 502 (a GET is tried once more first); a reset mid-body cuts',
  async (t) => {
    const before = up.requests.filter((r) => r.target === '/reset').length;
    const r = await timed('/h/reset');
    t.equal(r.status, 502);
    t.equal(up.requests.filter((q) => q.target === '/reset').length - before, 2, 'sent twice');
    const post = await timed('/h/reset', 'POST');
    t.equal(post.status, 502);
    t.equal(up.requests.filter((q) => q.target === '/reset').length - before, 3, 'a POST once');
    const mid = await timed('/h/reset-mid-body');
    t.ok(mid.closed && mid.status === 0, 'the client connection is cut');
    t.ok(mid.ms < 500, `at once (${Math.round(mid.ms)} ms)`);
    await stillServes(t);
  },
);

t.test('an upstream that is down: 502 UPSTREAM_UNREACHABLE at once', async (t) => {
  const r = await timed('/down/x');
  t.equal(r.status, 502);
  t.match(r.body, /UPSTREAM_UNREACHABLE/);
  t.ok(r.ms < 500, `after ${Math.round(r.ms)} ms`);
});

t.test(
  'max_idle_per_host 0: each request on its own connection, said connection: close',
  async (t) => {
    const before = up.requests.length;
    for (let i = 0; i < 4; i++) t.equal((await timed('/h/ok')).status, 200);
    const seen = up.requests.slice(before);
    t.equal(new Set(seen.map((r) => r.connection)).size, 4, 'four connections');
    t.ok(
      seen.every((r) => r.headers.some(([n, v]) => n === 'connection' && v === 'close')),
      'each said connection: close',
    );
  },
);

t.test('a balanced route with a refusing and a resetting backend: GETs fail over', async (t) => {
  for (let i = 0; i < 12; i++) {
    const r = await timed('/lb/ok');
    t.equal(r.status, 200, `#${i}`);
    t.equal(r.body, 'ok');
  }
});
