// The bench's floor service (uWS relays + a bare net client, no gateway logic) answers what the
// runner checks on its three shapes, relays headers both ways but hop-by-hop ones, runs as one
// process tree of N relays, and answers 502 to what it does not frame. No timed load here.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CleanupStack } from '../bench/cleanup-stack.js';
import { startFloor } from '../bench/floor.js';
import { parseBenchOptions } from '../bench/options.js';
import { packageRoot } from '../bench/paths.js';
import { childPids } from '../bench/process-memory.js';
import {
  echoAnswer,
  LARGE_BODY_BYTES,
  largeBody,
  REFERENCES,
  SCENARIOS,
  selectScenarios,
  UPSTREAM_BODY,
} from '../bench/scenarios.js';
import type { Service } from '../bench/service.js';
import type { UpstreamMessage } from '../bench/upstream-message.js';
import { startUpstream } from './helpers/upstream.js';

const dist = join(packageRoot(), 'dist', 'bench');
const entry = join(dist, 'floor-server.js');
const AUTH = { authorization: 'Bearer not-checked' };

/** The bench's own upstream (dist/bench/upstream-server.js), on a free port. */
async function startBenchUpstream(t: Test): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, [join(dist, 'upstream-server.js')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => {
    child.kill();
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m: UpstreamMessage) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`upstream exited ${code}`)));
  });
}

async function floorFor(t: Test, upstreamPort: number, processes: number): Promise<Service> {
  const cleanup = new CleanupStack();
  t.teardown(() => cleanup.run());
  return startFloor({ entry, upstreamPort, processes, authHeaders: AUTH }, cleanup);
}

t.test('the floor scenarios: listed, selectable, of the peers shapes', async (t) => {
  const names = ['floor-proxy', 'floor-large', 'floor-post'];
  t.same(
    parseBenchOptions(['--scenarios', names.join(',')]).scenarios,
    names,
    '--scenarios parses',
  );
  const floor = selectScenarios(names);
  t.same(
    floor.map((s) => [s.name, s.service, s.shape ?? 'get', s.auth]),
    [
      ['floor-proxy', 'floor', 'get', 'bearer'],
      ['floor-large', 'floor', 'large', 'bearer'],
      ['floor-post', 'floor', 'post', 'bearer'],
    ],
  );
  for (const s of floor) {
    const peer = SCENARIOS.find((p) => p.name === REFERENCES.nginx[s.shape ?? 'get']);
    t.same(s.expect, peer?.expect, `${s.name}: the answer nginx's scenario of its shape expects`);
    t.equal(s.path, peer?.path, `${s.name}: the same upstream path`);
    t.equal(s.body, peer?.body, `${s.name}: the same body`);
  }
});

t.test('the floor relays the three shapes from the bench upstream', async (t) => {
  t.ok(existsSync(entry), 'the floor is built (npm run build)');
  const service = await floorFor(t, await startBenchUpstream(t), 2);
  t.same(service.authHeaders, AUTH, 'its scenarios send the Authorization header given');
  const hello = await fetch(`${service.baseUrl}/hello`, { headers: AUTH });
  t.same([hello.status, await hello.text()], [200, UPSTREAM_BODY], 'GET /hello');
  t.equal(hello.headers.get('content-type'), 'text/plain', "the upstream's header passes");
  const large = await fetch(`${service.baseUrl}/large`, { headers: AUTH });
  const body = await large.text();
  t.equal(body.length, LARGE_BODY_BYTES, '100 KiB relayed');
  t.ok(body === largeBody(), 'the large body is intact');
  const post = await fetch(`${service.baseUrl}/echo`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json' },
    body: 'x'.repeat(1024),
  });
  t.same([post.status, await post.text()], [200, echoAnswer(1024)], 'the POST body reaches it');
  const missing = await fetch(`${service.baseUrl}/nothing-here`);
  t.same([missing.status, await missing.text()], [404, 'not found'], "the upstream's 404");
  t.equal(childPids(service.pid as number).length, 2, 'two relay processes under one parent');
});

/** What `/seen` answers: the request as the upstream got it, framed by Content-Length. */
interface Seen {
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** The helper upstream's echo is chunked (which the floor refuses): this one has a length. */
function seen(req: IncomingMessage, res: ServerResponse): boolean {
  if (!req.url?.startsWith('/seen')) return false;
  const body = JSON.stringify({ url: req.url, headers: req.headers } satisfies Seen);
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('set-cookie', ['a=1', 'b=2']);
  res.setHeader('x-end-to-end', 'yes');
  res.end(body);
  return true;
}

t.test('headers both ways, keep-alive reuse, HEAD, and 502 for a chunked answer', async (t) => {
  const upstream = await startUpstream(seen);
  t.teardown(() => upstream.close());
  const service = await floorFor(t, upstream.port, 1);
  const ask = async (headers: Record<string, string>): Promise<Seen> => {
    const res = await fetch(`${service.baseUrl}/seen?q=1`, { headers });
    t.equal(res.status, 200);
    t.equal(res.headers.get('x-end-to-end'), 'yes', 'an end-to-end answer header passes');
    t.equal(res.headers.get('set-cookie'), 'a=1, b=2', 'both Set-Cookie lines pass');
    return (await res.json()) as Seen;
  };
  const got = await ask({ ...AUTH, 'x-client': 'bench-1', te: 'trailers' });
  t.equal(got.url, '/seen?q=1', 'path and query as sent');
  t.equal(got.headers['x-client'], 'bench-1', 'a request header passes');
  t.equal(got.headers.authorization, AUTH.authorization, 'the token passes, unchecked');
  t.equal(got.headers.host, `127.0.0.1:${upstream.port}`, "Host is the upstream's");
  t.equal(got.headers.te, undefined, 'a hop-by-hop header does not');
  const sockets = new Set<number>();
  upstream.server.on('connection', (socket) => sockets.add(socket.remotePort ?? 0));
  for (let i = 0; i < 3; i++) await ask({});
  t.equal(sockets.size, 0, 'sequential requests reuse the kept-alive connection');
  const head = await fetch(`${service.baseUrl}/bytes/10`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD answered');
  t.equal(head.headers.get('content-length'), '10', 'with the length GET would send');
  const chunked = await fetch(`${service.baseUrl}/chunked/10`);
  t.equal(chunked.status, 502, 'a chunked answer is not relayed');
  await chunked.arrayBuffer();
  const after = await fetch(`${service.baseUrl}/bytes/70000`);
  t.equal((await after.arrayBuffer()).byteLength, 70_000, 'the floor still relays after a 502');
});
