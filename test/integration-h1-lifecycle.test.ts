// The own upstream client (worker/h1-client.ts) across the gateway's life: a reload that
// changes a route's target while its requests are in flight (answers pending, bodies still
// being read by a step), a drain with requests in flight, and the connections it holds when
// an upstream never answers or many requests end at once.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { logged, startGateway, waitFor } from './helpers/gateway.js';
import { type HostileUpstream, startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, rawConnection } from './helpers/raw-http.js';

function answer(body: string): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
}

/** An upstream that names itself in each answer; `/slow/MS` answers after MS ms, `/hang` never. */
async function namedUpstream(name: string): Promise<HostileUpstream> {
  return startHostileUpstream((req) => {
    const [, kind, arg] = req.target.split('/');
    if (kind === 'hang') return { chunks: [], after: 'hang' };
    const body = `${name} ${req.method} ${req.body.toString('latin1')}`;
    if (kind === 'slow') return { chunks: [{ data: answer(body), delayMs: Number(arg) }] };
    return { chunks: [answer(body)] };
  });
}

const a = await namedUpstream('A');
const b = await namedUpstream('B');
t.teardown(async () => {
  await a.close();
  await b.close();
});

const hang = await startHostileUpstream(() => ({ chunks: [], after: 'hang' }));
t.teardown(() => hang.close());

function routes(target: string): string {
  // The filter reads the body before the request is forwarded (an async step).
  return `routes:
  - prefix: /r
    target: ${target}
    secure: false
    filters:
      default_allow: true
      deny:
        - { field: body_raw, pattern: "^forbidden$" }
  - prefix: /h
    target: ${hang.origin}
    secure: false
`;
}

const TIMEOUT = 2000;
const gw = await startGateway({
  routes: routes(a.origin),
  config: { client_timeout: TIMEOUT, max_idle_per_host: 3 },
});
t.teardown(() => gw.stop());

/** Sends `head` (and `body` parts `gapMs` apart) on a raw connection; resolves at the answer. */
async function send(
  port: number,
  parts: readonly string[],
  gapMs = 0,
): Promise<{ status: number; body: string }> {
  const socket = await rawConnection(port);
  let data = Buffer.alloc(0);
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (parseResponses(data, []).responses.length > 0) resolve();
    });
    socket.on('close', () => resolve());
    socket.on('error', () => {});
  });
  for (const [i, part] of parts.entries()) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    socket.write(part);
  }
  await answered;
  socket.destroy();
  const res = parseResponses(data, []).responses[0];
  return { status: res?.status ?? 0, body: res?.body.toString() ?? '' };
}

async function reloaded(n: number): Promise<boolean> {
  return waitFor(
    () => logged(gw.output(), { message: 'configuration reloaded', reload: 'applied' }).length >= n,
    10_000,
  );
}

t.test('a reload that moves a route: requests in flight finish, wherever they were', async (t) => {
  t.equal((await send(gw.port, ['GET /r/x HTTP/1.1\r\nhost: x\r\n\r\n'])).body, 'A GET ');
  // Waiting for the upstream's answer when the reload comes.
  const waiting = send(gw.port, ['GET /r/slow/1500 HTTP/1.1\r\nhost: x\r\n\r\n']);
  // Its body still being read by the filter when the reload comes: forwarded after it.
  const uploading = send(
    gw.port,
    ['POST /r/x HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nhello', 'world'],
    1500,
  );
  await new Promise((r) => setTimeout(r, 300));
  await writeFile(join(gw.configDir, 'routes.yml'), routes(b.origin));
  t.ok(await reloaded(1), 'reloaded');
  t.equal((await send(gw.port, ['GET /r/x HTTP/1.1\r\nhost: x\r\n\r\n'])).body, 'B GET ');
  t.same(await waiting, { status: 200, body: 'A GET ' }, 'the answer in flight arrives');
  const uploaded = await uploading;
  t.equal(uploaded.status, 200, 'the request whose body was being read is forwarded');
  t.match(uploaded.body, /^[AB] POST helloworld$/);
});

/** Upstream connections of `up` not closed yet. */
function open(up: HostileUpstream): number {
  return up.connections.filter((c) => c.closed === undefined).length;
}

t.test('requests to an upstream that never answers: every connection is closed', async (t) => {
  // Clients that give up after 100 ms, and clients that wait for the deadline.
  const clients = await Promise.all(
    Array.from({ length: 120 }, async () => {
      const socket = await rawConnection(gw.port);
      socket.on('error', () => {});
      socket.write('GET /h/x HTTP/1.1\r\nhost: x\r\n\r\n');
      return socket;
    }),
  );
  t.ok(await waitFor(() => hang.connections.length === 120, 3000), '120 upstream connections');
  await new Promise((r) => setTimeout(r, 100));
  for (const s of clients.slice(0, 60)) s.destroy();
  t.ok(await waitFor(() => open(hang) <= 60, 1000), `aborted: closed at once (${open(hang)} open)`);
  t.ok(
    await waitFor(() => open(hang) === 0, TIMEOUT + 1500),
    `timed out: closed (${open(hang)} open)`,
  );
  t.ok(
    hang.connections.every((c) => c.closed === 'client'),
    'the gateway closed them all',
  );
  for (const s of clients) s.destroy();
});

t.test('many connections at once, then idle: at most max_idle_per_host stay open', async (t) => {
  const before = b.connections.length;
  const results = await Promise.all(
    Array.from({ length: 80 }, () =>
      send(gw.port, ['GET /r/slow/300 HTTP/1.1\r\nhost: x\r\n\r\n']),
    ),
  );
  t.ok(
    results.every((r) => r.status === 200),
    'all answered',
  );
  const mine = () => b.connections.slice(before);
  t.ok(mine().length >= 40, `${mine().length} connections were opened`);
  t.ok(
    await waitFor(() => mine().filter((c) => c.closed === undefined).length <= 3 * 2, 1000),
    `idle ones beyond the cap closed (${mine().filter((c) => c.closed === undefined).length} open, 2 edges)`,
  );
});

t.test('a drain lets requests in flight finish', async (t) => {
  const waiting = send(gw.port, ['GET /r/slow/800 HTTP/1.1\r\nhost: x\r\n\r\n']);
  await new Promise((r) => setTimeout(r, 200));
  const stopped = gw.stop();
  t.same(await waiting, { status: 200, body: 'B GET ' });
  t.equal(await stopped, 0);
});
