// WebSocket proxying through the real CLI, with the `ws` package as client and as backend:
// authentication at the handshake, messages both ways, ping/pong, close codes, backpressure
// and bounded memory, refusals, subprotocols, identity headers, token expiry, drain.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { freePort } from './helpers/free-port.js';
import { logged, login, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { type Handshake, startWsBackend } from './helpers/ws-backend.js';

const MiB = 1024 * 1024;

type Behaviour = (socket: WebSocket, handshake: Handshake) => void;
/** Per backend path: what the backend does with a connection. */
const behaviours = new Map<string, Behaviour>();
/** Every connection the backend accepted, by path. */
const accepted: { path: string; socket: WebSocket }[] = [];

const echo: Behaviour = (socket) => {
  socket.on('message', (data, binary) => socket.send(data, { binary }));
};
behaviours.set('/echo', echo);

const backend = await startWsBackend({
  onConnection: (socket, handshake) => {
    const path = new URL(handshake.url, 'http://x').pathname;
    accepted.push({ path, socket });
    socket.on('error', () => {});
    (behaviours.get(path) ?? echo)(socket, handshake);
  },
  refuse: (h) => (h.url.startsWith('/refused') ? 403 : undefined),
});
const unreachablePort = await freePort();

const routes = `routes:
  - prefix: /ws
    target: ${backend.origin}
  - prefix: /public
    target: ${backend.origin}
    secure: false
  - prefix: /nows
    target: ${backend.origin}
    websocket: false
  - prefix: /bob-only
    target: ${backend.origin}
    username: [bob]
  - prefix: /down
    target: http://127.0.0.1:${unreachablePort}
  - prefix: /balanced
    target: http://127.0.0.1:${unreachablePort}/x
    backends:
      - { url: "http://127.0.0.1:${unreachablePort}/x", weight: 0 }
      - ${backend.origin}/bal
  - prefix: /all-down
    target: http://127.0.0.1:${unreachablePort}
    health_check: { path: /, interval: 200, timeout: 100 }
  - prefix: /limited
    target: ${backend.origin}
    ratelimit: { requests_per_second: 1, burst: 4, block_delay: 0 }
`;

const gw: RunningGateway = await startGateway({
  routes,
  users: [
    { username: 'alice', password: 'alice-password', roles: ['read', 'write'] },
    { username: 'bob', password: 'bob-password' },
  ],
  config: { num_instances: 1 },
});
const token = await login(gw.url);
const wsUrl = gw.url.replace('http:', 'ws:');
t.teardown(async () => {
  await gw.stop();
  await backend.close();
});

interface Opened {
  socket: WebSocket;
  messages: { data: Buffer; binary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Connects through the gateway; resolves once open (rejects with the HTTP refusal). */
function connect(
  path: string,
  options: { token?: string | null; protocols?: string[]; headers?: Record<string, string> } = {},
  base = wsUrl,
): Promise<Opened> {
  const headers: Record<string, string> = { ...options.headers };
  const bearer = options.token === undefined ? token : options.token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  const socket = new WebSocket(`${base}${path}`, options.protocols ?? [], {
    headers,
    perMessageDeflate: false,
    maxPayload: 64 * MiB,
  });
  const messages: Opened['messages'] = [];
  socket.on('message', (data, binary) => messages.push({ data, binary }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => reject(new Refused(res.statusCode ?? 0, body)));
    });
    socket.on('error', (err) => reject(err));
    socket.on('open', () => resolve({ socket, messages, closed }));
  });
}

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`refused ${status}: ${body}`);
  }
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Refused) {
      return { status: err.status, code: (JSON.parse(err.body) as { error: string }).error };
    }
    throw err;
  }
  throw new Error('the handshake was accepted');
}

/** The backend connection most recently accepted on `path`. */
function lastAccepted(path: string): WebSocket {
  const found = accepted.filter((a) => a.path === path).at(-1);
  if (!found) throw new Error(`no backend connection on ${path}`);
  return found.socket;
}

t.test('10,000 messages echo through, text and binary, in order', async (t) => {
  const c = await connect('/ws/echo');
  const N = 10_000;
  for (let i = 0; i < N; i++) {
    if (i % 2 === 0) c.socket.send(`message ${i}`);
    else c.socket.send(Buffer.from(`binary ${i}`), { binary: true });
  }
  t.ok(await waitFor(() => c.messages.length >= N, 20_000), 'every message came back');
  let ok = c.messages.length === N;
  for (let i = 0; i < N && ok; i++) {
    const m = c.messages[i]!;
    const want = i % 2 === 0 ? `message ${i}` : `binary ${i}`;
    if (m.data.toString() !== want || m.binary !== (i % 2 === 1)) {
      ok = false;
      t.fail(`message ${i}: got ${m.binary ? 'binary' : 'text'} ${m.data.toString()}`);
    }
  }
  t.ok(ok, 'same content, same type, same order');
  c.socket.close(1000);
  t.equal((await c.closed).code, 1000);
});

t.test('a 16 MiB message goes both ways whole; a larger one closes the tunnel', async (t) => {
  const c = await connect('/ws/echo');
  const big = randomBytes(16 * MiB);
  c.socket.send(big, { binary: true });
  t.ok(await waitFor(() => c.messages.length === 1, 20_000), 'echoed');
  const back = c.messages[0]!;
  t.equal(back.data.length, big.length, 'same size');
  t.equal(
    createHash('sha256').update(back.data).digest('hex'),
    createHash('sha256').update(big).digest('hex'),
    'same bytes',
  );
  const upstream = lastAccepted('/echo');
  const backendClosed = new Promise<number>((resolve) =>
    upstream.on('close', (code) => resolve(code)),
  );
  c.socket.send(Buffer.alloc(16 * MiB + 1), { binary: true });
  // uWS cuts a client whose message is too large without a close frame (uwebsockets 3.0.6).
  t.equal((await c.closed).code, 1006, 'client message too big: cut');
  t.equal(await backendClosed, 1001, 'the backend was told the client is gone');

  behaviours.set('/big-talker', (socket) => {
    socket.on('message', () => socket.send(Buffer.alloc(16 * MiB + 1), { binary: true }));
  });
  const d = await connect('/ws/big-talker');
  const talker = lastAccepted('/big-talker');
  const talkerClosed = new Promise<number>((resolve) =>
    talker.on('close', (code) => resolve(code)),
  );
  d.socket.send('go');
  t.equal(await talkerClosed, 1009, 'backend message too big: the backend gets 1009');
  t.equal((await d.closed).code, 1014, 'and the client 1014');
  t.equal(d.messages.length, 0, 'nothing of it reached the client');
});

t.test('pings reach the other end and are answered; pongs come back', async (t) => {
  const c = await connect('/ws/echo');
  const upstream = lastAccepted('/echo');
  const backendPings: string[] = [];
  upstream.on('ping', (d) => backendPings.push(d.toString()));
  const clientPongs: string[] = [];
  c.socket.on('pong', (d) => clientPongs.push(d.toString()));
  const clientPings: string[] = [];
  c.socket.on('ping', (d) => clientPings.push(d.toString()));
  const backendPongs: string[] = [];
  upstream.on('pong', (d) => backendPongs.push(d.toString()));
  c.socket.ping('from-client');
  upstream.ping('from-backend');
  t.ok(await waitFor(() => backendPings.includes('from-client'), 5_000), 'backend got the ping');
  t.ok(await waitFor(() => clientPongs.includes('from-client'), 5_000), 'client got its pong');
  t.ok(await waitFor(() => clientPings.includes('from-backend'), 5_000), 'client got the ping');
  t.ok(await waitFor(() => backendPongs.includes('from-backend'), 5_000), 'backend got its pong');
  c.socket.close();
  t.equal((await c.closed).code, 1005, 'a close without code stays without code');
});

t.test('close codes and reasons pass both ways', async (t) => {
  const c = await connect('/ws/echo');
  const upstream = lastAccepted('/echo');
  const backendClosed = new Promise<[number, string]>((resolve) =>
    upstream.on('close', (code, reason) => resolve([code, reason.toString()])),
  );
  c.socket.close(4000, 'client bye');
  t.same(await backendClosed, [4000, 'client bye'], 'backend saw the client code');
  t.same(await c.closed, { code: 4000, reason: 'client bye' }, 'the close handshake completed');

  behaviours.set('/closer', (socket) => {
    socket.on('message', () => socket.close(4001, 'backend bye'));
  });
  const d = await connect('/ws/closer');
  d.socket.send('close please');
  t.same(await d.closed, { code: 4001, reason: 'backend bye' }, 'client saw the backend code');

  behaviours.set('/vanisher', (socket) => {
    socket.on('message', () => socket.terminate());
  });
  const e = await connect('/ws/vanisher');
  e.socket.send('go away');
  t.same(
    await e.closed,
    { code: 1014, reason: 'upstream connection lost' },
    'a backend that vanishes: 1014 Bad Gateway',
  );

  const f = await connect('/ws/echo');
  const upstreamF = lastAccepted('/echo');
  const backendClosedF = new Promise<number>((resolve) =>
    upstreamF.on('close', (code) => resolve(code)),
  );
  f.socket.terminate();
  t.equal(await backendClosedF, 1001, 'a client that vanishes: the backend gets 1001');
});

t.test('the handshake carries identity and forwarding headers, never the token', async (t) => {
  const c = await connect('/ws/echo?x=1', {
    protocols: ['chat', 'superchat'],
    headers: {
      'x-user': 'mallory',
      'x-forwarded-for': '6.6.6.6',
      origin: 'https://app.example',
      cookie: 'a=1',
    },
  });
  const h = backend.handshakes.at(-1)!;
  t.equal(h.url, '/echo?x=1', 'path after the prefix, query kept');
  t.equal(h.headers['x-user'], 'alice', 'identity from the token');
  t.equal(h.headers['x-user-roles'], 'read,write');
  t.equal(h.headers['x-forwarded-for'], '127.0.0.1', 'client address from the socket');
  t.equal(h.headers['x-forwarded-proto'], 'http');
  t.equal(h.headers.authorization, undefined, 'the gateway token is not forwarded');
  t.equal(h.headers.origin, 'https://app.example', 'Origin passes (backends check it)');
  t.equal(h.headers.cookie, 'a=1');
  t.equal(h.headers['sec-websocket-extensions'], undefined, 'no extension offered upstream');
  t.same(h.protocols, ['chat', 'superchat'], 'subprotocols offered as the client did');
  t.equal(c.socket.protocol, 'superchat', 'the backend choice reaches the client');
  c.socket.close(1000);
  await c.closed;
});

t.test('a handshake header named like an Object.prototype key passes as it is', async (t) => {
  // (`__proto__` cannot be tried here: uWS refuses any header name with `_`.)
  const c = await connect('/ws/echo', { headers: { constructor: 'c-value', 'x-after': '1' } });
  const h = backend.handshakes.at(-1)!.headers as Record<string, unknown>;
  t.equal(Object.getOwnPropertyDescriptor(h, 'constructor')?.value, 'c-value', 'constructor');
  t.equal(h['x-after'], '1', 'the header after it');
  c.socket.close(1000);
  await c.closed;
});

t.test("the 101 carries the pipeline's headers: the route's RateLimit", async (t) => {
  // An upgrade's head is finished by uWS: the pipeline's head lines go as writeHeader calls.
  const responses: Record<string, string | string[] | undefined>[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await connect('/limited/echo');
    const upgraded = new Promise<void>((resolve) => c.socket.once('message', () => resolve()));
    c.socket.send('x');
    await upgraded;
    c.socket.close(1000);
    await c.closed;
  }
  for (let i = 0; i < 2; i++) {
    const socket = new WebSocket(`${wsUrl}/limited/echo`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    socket.on('error', () => {});
    responses.push(
      await new Promise((resolve, reject) => {
        socket.on('upgrade', (res) => resolve(res.headers));
        socket.on('unexpected-response', (_req, res) => reject(new Error(`${res.statusCode}`)));
      }),
    );
    socket.close(1000);
  }
  const values = responses.map((h) => h.ratelimit);
  t.match(values[0], /^"route";r=\d;t=\d+$/, 'RateLimit on the 101');
  t.match(values[1], /^"route";r=\d;t=\d+$/);
  t.ok(
    Number(/r=(\d)/.exec(String(values[1]))![1]) < Number(/r=(\d)/.exec(String(values[0]))![1]),
    'each upgrade spends',
  );
});

t.test('refusals happen before the backend is contacted', async (t) => {
  const before = backend.handshakes.length;
  t.same(await refusal(connect('/ws/echo', { token: 'not-a-token' })), {
    status: 401,
    code: 'TOKEN_INVALID',
  });
  t.same(await refusal(connect('/ws/echo', { token: null })), {
    status: 401,
    code: 'TOKEN_MISSING',
  });
  t.same(await refusal(connect('/bob-only/echo')), { status: 403, code: 'USER_NOT_ALLOWED' });
  t.same(await refusal(connect('/nows/echo')), { status: 403, code: 'WEBSOCKET_NOT_ALLOWED' });
  t.same(await refusal(connect('/nowhere')), { status: 404, code: 'NO_ROUTE' });
  for (const [name, value] of [
    ['sec-websocket-protocol', 'a b'],
    ['sec-websocket-protocol', 'chat, chat'],
    ['sec-websocket-version', '8'],
    ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=!'],
    ['content-length', '4'],
  ] as const) {
    t.same(await rawHandshake({ [name]: value }), { status: 400, code: 'BAD_REQUEST' }, name);
  }
  t.equal(backend.handshakes.length, before, 'the backend saw none of them');
  const pub = await connect('/public/echo', { token: null });
  pub.socket.send('hi');
  t.ok(await waitFor(() => pub.messages.length === 1, 5_000), 'a public route needs no token');
  t.equal(backend.handshakes.at(-1)!.headers['x-user'], undefined, 'and sends no identity');
  pub.socket.close(1000);
  await pub.closed;
});

/** A handshake no WebSocket library would send (a malformed one), written raw. */
async function rawHandshake(
  headers: Record<string, string>,
): Promise<{ status: number; code: string }> {
  const all: Record<string, string> = {
    host: `127.0.0.1:${gw.port}`,
    authorization: `Bearer ${token}`,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-version': '13',
    ...headers,
  };
  const head = Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const body = all['content-length'] === undefined ? '' : 'x'.repeat(Number(all['content-length']));
  const result = await rawExchange(gw.port, [`GET /ws/echo HTTP/1.1\r\n${head}\r\n${body}`]);
  const res = result.responses[0];
  if (!res) throw new Error('no answer');
  return { status: res.status, code: (JSON.parse(res.body.toString()) as { error: string }).error };
}

t.test('a backend that refuses or cannot be reached: 502', async (t) => {
  t.same(await refusal(connect('/ws/refused')), {
    status: 502,
    code: 'UPSTREAM_WEBSOCKET_REFUSED',
  });
  t.same(await refusal(connect('/down/echo')), { status: 502, code: 'UPSTREAM_UNREACHABLE' });
});

/** Resident memory of a process, in bytes (Linux). */
function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

t.test('a client that does not read: the backend is held back, memory bounded', async (t) => {
  const MESSAGE = MiB;
  const TOTAL = 256;
  let handed = 0;
  behaviours.set('/flood', (socket) => {
    // Sends as fast as its own socket takes them: only backpressure can stop it.
    const pump = (): void => {
      while (handed < TOTAL && socket.bufferedAmount < 4 * MESSAGE) {
        const m = Buffer.alloc(MESSAGE, handed % 251);
        socket.send(m, { binary: true });
        handed++;
      }
      if (handed < TOTAL && socket.readyState === WebSocket.OPEN) setTimeout(pump, 5);
    };
    pump();
  });
  const edge = gw.edges[0]!;
  const before = rss(edge);
  const c = await connect('/ws/flood');
  c.socket.pause();
  await new Promise((r) => setTimeout(r, 2_000));
  const stalledAt = handed;
  const grown = rss(edge) - before;
  t.ok(stalledAt < 96, `the backend was held back (${stalledAt} MiB handed to its socket)`);
  t.ok(grown < 64 * MiB, `edge memory grew by ${Math.round(grown / MiB)} MiB`);
  c.socket.resume();
  t.ok(await waitFor(() => c.messages.length === TOTAL, 30_000), 'every message arrived');
  t.ok(
    c.messages.every((m, i) => m.data.length === MESSAGE && m.data[0] === i % 251),
    'whole and in order',
  );
  c.socket.close(1000);
  await c.closed;
});

t.test('a backend that does not read: the client is closed with 1013', async (t) => {
  behaviours.set('/deaf', (socket) => {
    socket.pause();
  });
  const c = await connect('/ws/deaf');
  const upstream = lastAccepted('/deaf');
  const backendClosed = new Promise<number>((resolve) =>
    upstream.on('close', (code) => resolve(code)),
  );
  const edge = gw.edges[0]!;
  const before = rss(edge);
  const chunk = Buffer.alloc(MiB);
  let sent = 0;
  let peak = 0;
  while (c.socket.readyState === WebSocket.OPEN && sent < 512) {
    c.socket.send(chunk, { binary: true });
    sent++;
    // Each turn lets the client read what the gateway says (its close frame).
    await new Promise((r) => setImmediate(r));
    while (c.socket.bufferedAmount > 4 * MiB && c.socket.readyState === WebSocket.OPEN) {
      await new Promise((r) => setTimeout(r, 5));
    }
    peak = Math.max(peak, rss(edge) - before);
  }
  const closed = await c.closed;
  t.equal(closed.code, 1013, `closed after ${sent} MiB: ${closed.reason}`);
  t.ok(sent < 200, 'before the client could send it all');
  t.ok(peak < 96 * MiB, `edge memory grew by ${Math.round(peak / MiB)} MiB at most`);
  upstream.resume();
  t.equal(await backendClosed, 1001, 'the backend was told the client is gone');
});

t.test('logging out (revoking the token) closes its tunnels with 1008', async (t) => {
  const own = await login(gw.url);
  const c = await connect('/ws/echo', { token: own });
  const res = await fetch(`${gw.url}/logout`, { headers: { authorization: `Bearer ${own}` } });
  t.equal(res.status, 200, 'logged out');
  const started = Date.now();
  t.same(await c.closed, { code: 1008, reason: 'token revoked' });
  t.ok(Date.now() - started < 3_000, 'within the check period');
});

t.test('a reload in place keeps open tunnels; new handshakes follow the new rules', async (t) => {
  const c = await connect('/ws/echo');
  const reloads = () => logged(gw.output(), { reload: 'applied' }).length;
  const before = reloads();
  await writeFile(
    join(gw.configDir, 'routes.yml'),
    routes.replace(
      `  - prefix: /ws\n    target: ${backend.origin}\n`,
      `  - prefix: /ws\n    target: ${backend.origin}\n    websocket: false\n`,
    ),
  );
  gw.proc.kill('SIGHUP');
  t.ok(await waitFor(() => reloads() > before, 15_000), 'the reload was applied in place');
  t.same(await refusal(connect('/ws/echo')), { status: 403, code: 'WEBSOCKET_NOT_ALLOWED' });
  c.socket.send('still there?');
  t.ok(await waitFor(() => c.messages.length === 1, 5_000), 'the open tunnel still relays');
  c.socket.close(1000);
  t.equal((await c.closed).code, 1000);
});

t.test('an expired token closes the tunnel (1008), a drain closes with 1001', async (t) => {
  const short = await startGateway({
    routes,
    config: { num_instances: 1, token_expiry_seconds: 2 },
  });
  const base = short.url.replace('http:', 'ws:');
  const shortToken = await login(short.url);
  const c = await connect('/ws/echo', { token: shortToken }, base);
  const started = Date.now();
  const closed = await c.closed;
  t.equal(closed.code, 1008, `closed: ${closed.reason}`);
  t.equal(closed.reason, 'token expired');
  t.ok(Date.now() - started < 4_000, 'within the check period after expiry');

  const freshToken = await login(short.url);
  const d = await connect('/ws/echo', { token: freshToken }, base);
  const upstream = lastAccepted('/echo');
  const backendClosed = new Promise<number>((resolve) =>
    upstream.on('close', (code) => resolve(code)),
  );
  const stopping = short.stop();
  t.same(await d.closed, { code: 1001, reason: 'going away' }, 'client told to go away');
  t.equal(await backendClosed, 1001, 'backend told too');
  t.equal(await stopping, 0, 'the gateway exited cleanly');
});

t.test("a balanced route's handshake goes to the backend its balancer picks", async (t) => {
  const c = await connect('/balanced/echo');
  t.ok(lastAccepted('/bal/echo'), "the member's own path, target (weight 0) left out");
  c.socket.send('balanced');
  t.ok(await waitFor(() => c.messages.length === 1, 5_000));
  t.equal(c.messages[0]?.data.toString(), 'balanced');
  c.socket.close(1000);
  // Every member failed its health check: refused before any connection, with Retry-After.
  t.ok(
    await waitFor(
      () =>
        logged(gw.output(), {
          message: 'backend failed its health check: skipped until one passes',
        }).length > 0,
      5_000,
    ),
    'the check ran',
  );
  t.same(await refusal(connect('/all-down/echo')), { status: 503, code: 'NO_HEALTHY_UPSTREAM' });
});
