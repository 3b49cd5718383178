// /healthz and /readyz on the main port (health_on_main_port): the probe's caching and failure
// rules, then the endpoints on one in-process edge with a catch-all route behind them.
import t, { type Test } from 'tap';
import { ERRORS } from '../shared/errors.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import {
  READINESS_TIMEOUT_MS,
  READINESS_TTL_MS,
  ReadinessProbe,
} from '../worker/health-endpoints.js';
import { Runtime } from '../worker/runtime.js';
import { inProcessNode, serveEdge } from './helpers/edge-services.js';
import { startUpstream } from './helpers/upstream.js';

const SECRET = 'health-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA';

t.test('probe: one ask in flight, its verdict reused for the TTL, then asked again', async (t) => {
  let now = 1000;
  const asks: number[] = [];
  let answer = true;
  const probe = new ReadinessProbe(
    async (timeoutMs) => {
      asks.push(timeoutMs);
      return answer;
    },
    () => now,
  );
  const first = probe.ready();
  const second = probe.ready();
  t.ok(first instanceof Promise, 'nothing known yet: asked');
  t.equal(first, second, 'concurrent probes share the ask in flight');
  t.equal(await first, true);
  t.same(asks, [READINESS_TIMEOUT_MS], 'asked once, with the timeout');
  t.equal(probe.ready(), true, 'a fresh verdict is answered at once');
  answer = false;
  now += READINESS_TTL_MS - 1;
  t.equal(probe.ready(), true, 'still fresh');
  now += 1;
  t.equal(await probe.ready(), false, 'past the TTL the supervisor is asked again');
  t.equal(asks.length, 2);
  t.equal(probe.ready(), false, 'and "not ready" is reused as well');
});

t.test(
  'probe: a supervisor that fails or times out means not ready; so does draining',
  async (t) => {
    let now = 0;
    let asks = 0;
    const probe = new ReadinessProbe(
      async () => {
        asks++;
        throw Object.assign(new Error('no answer'), { code: 'ASK_TIMEOUT' });
      },
      () => now,
    );
    t.equal(await probe.ready(), false, 'an ask that fails is "not ready", never a rejection');
    t.equal(probe.ready(), false, 'reused: a flood does not pile up asks on a stuck supervisor');
    t.equal(asks, 1);
    const ready = new ReadinessProbe(
      async () => true,
      () => now,
    );
    t.equal(await ready.ready(), true);
    ready.draining = true;
    t.equal(ready.ready(), false, 'a draining edge is not ready, whatever the supervisor said');
    now += READINESS_TTL_MS;
    t.equal(ready.ready(), false, 'and does not ask');
    const late = new ReadinessProbe(
      async () => true,
      () => now,
    );
    const pending = late.ready();
    late.draining = true;
    t.equal(await pending, false, 'a drain that starts while the ask is in flight wins');
  },
);

/** A config generation with `config` (plus the secret) and one public `/` route to `origin`. */
function snapshotOf(
  dataDir: string,
  config: Record<string, unknown>,
  origin: string,
): ConfigSnapshot {
  return {
    generation: 1,
    keyRing: { active: SECRET, verifyOnly: [] },
    configDir: '/virtual',
    dataDir,
    files: { config: '/virtual/config.json', routes: '/virtual/routes.yml' },
    raw: {
      config: { secret: SECRET, ...config },
      routes: { routes: [{ prefix: '/', target: origin, secure: false }] },
    },
  };
}

async function edge(t: Test, config: Record<string, unknown>, probe?: ReadinessProbe) {
  const upstream = await startUpstream();
  t.teardown(() => upstream.close());
  const node = await inProcessNode();
  if (probe) Object.assign(node.services, { readiness: probe });
  const users = [{ username: 'u', password: HASH }];
  const snapshot = snapshotOf(node.dataDir, { users, ...config }, upstream.origin);
  const runtime = await Runtime.build(snapshot, node.services);
  return { url: await serveEdge(t, node, runtime), runtime };
}

t.test('on: the edge answers both paths; a / route keeps every other path', async (t) => {
  const { url, runtime } = await edge(t, { health_on_main_port: true });
  t.ok(runtime.endpoints.has('/healthz') && runtime.endpoints.has('/readyz'));
  for (const path of ['/healthz', '/readyz', '/readyz/', '/healthz?x=1']) {
    const res = await fetch(`${url}${path}`);
    t.equal(res.status, 200, path);
    t.equal(res.headers.get('content-type'), 'application/json');
    t.equal(res.headers.get('cache-control'), 'no-store');
    t.same(await res.json(), { status: 'ok' }, `${path}: nothing but "ok"`);
  }
  const head = await fetch(`${url}/readyz`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '', 'HEAD: the head of GET, no body');
  const post = await fetch(`${url}/healthz`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  t.equal(((await post.json()) as { error: string }).error, 'METHOD_NOT_ALLOWED');
  const below = await fetch(`${url}/healthz/deep`);
  t.equal(((await below.json()) as { url: string }).url, '/healthz/deep', 'below: the route');
});

t.test('on: not ready is 503 NOT_READY with nothing more', async (t) => {
  const { url } = await edge(
    t,
    { health_on_main_port: true },
    new ReadinessProbe(async () => false),
  );
  const res = await fetch(`${url}/readyz`);
  t.equal(res.status, 503);
  t.same(await res.json(), { code: 503, error: 'NOT_READY', message: ERRORS.NOT_READY.message });
  const live = await fetch(`${url}/healthz`);
  t.equal(live.status, 200, 'liveness does not depend on readiness');
  await live.arrayBuffer();
  const failing = await edge(
    t,
    { health_on_main_port: true },
    new ReadinessProbe(async () => {
      throw new Error('supervisor gone');
    }),
  );
  const gone = await fetch(`${failing.url}/readyz`);
  t.equal(gone.status, 503, 'a supervisor that does not answer: not ready');
  t.notMatch(await gone.text(), /supervisor gone/, 'the cause stays out of the answer');
});

t.test("off (the default): not in the map, the paths are the routes'", async (t) => {
  let asked = 0;
  const { url, runtime } = await edge(
    t,
    {},
    new ReadinessProbe(async () => {
      asked++;
      return true;
    }),
  );
  t.notOk(runtime.endpoints.has('/healthz'));
  t.notOk(runtime.endpoints.has('/readyz'));
  for (const path of ['/healthz', '/readyz']) {
    const res = await fetch(`${url}${path}`);
    t.equal(res.status, 200);
    t.equal(((await res.json()) as { url: string }).url, path, `${path} reaches the backend`);
  }
  t.equal(asked, 0, 'the supervisor is never asked');
});

t.test('on: a health path is no login page source (logout_redirect_url)', async (t) => {
  // Session-cookie mode takes the failure page from the public route serving
  // logout_redirect_url, unless that path is the gateway's own; with the option on, these are.
  let hits = 0;
  const page =
    '<html><body><!-- BEGIN_BLOCK_ERROR --><p>{{ERROR}}</p><!-- END_BLOCK_ERROR --></body></html>';
  const backend = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/healthz')) return false;
    hits++;
    res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    return true;
  });
  t.teardown(() => backend.close());
  const failedLogin = async (health: boolean) => {
    const node = await inProcessNode();
    const snapshot = snapshotOf(
      node.dataDir,
      {
        session_cookie: true,
        csrf_token: false,
        logout_redirect_url: '/healthz',
        health_on_main_port: health,
      },
      backend.origin,
    );
    const url = await serveEdge(t, node, await Runtime.build(snapshot, node.services));
    const res = await fetch(`${url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: 'username=',
    });
    t.equal(res.status, 400, 'a failed browser login gets a page');
    t.match(res.headers.get('content-type'), /^text\/html/);
    await res.arrayBuffer();
  };
  await failedLogin(false);
  t.equal(hits, 1, 'off: the route serving /healthz is where the page comes from');
  await failedLogin(true);
  t.equal(hits, 1, "on: /healthz is the gateway's, never fetched as a page");
});
