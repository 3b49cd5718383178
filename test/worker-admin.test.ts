// The admin API's gates, on one in-process edge with a real store: an empty token_admin turns
// the API off, admin_allow refuses other addresses before the token is even looked at.
import t, { type Test } from 'tap';
import type { ConfigSnapshot } from '../shared/ipc.js';
import { TokenCodec } from '../shared/token-codec.js';
import { Runtime } from '../worker/runtime.js';
import { type InProcessNode, inProcessNode, serveEdge } from './helpers/edge-services.js';

const SECRET = 'admin-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const ADMIN = 'c'.repeat(64);
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA';

async function edge(t: Test, config: Record<string, unknown>) {
  const node: InProcessNode = await inProcessNode();
  const snapshot: ConfigSnapshot = {
    generation: 1,
    keyRing: { active: SECRET, verifyOnly: [] },
    configDir: '/virtual',
    dataDir: node.dataDir,
    files: { config: '/virtual/config.json', routes: '/virtual/routes.yml' },
    raw: {
      config: { secret: SECRET, users: [{ username: 'u', password: HASH }], ...config },
      routes: { routes: [] },
    },
  };
  const runtime = await Runtime.build(snapshot, node.services);
  return { url: await serveEdge(t, node, runtime), node };
}

async function call(url: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${url}${path}`, init);
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, error: body.error, body };
}

t.test('an empty token_admin turns every admin endpoint off', async (t) => {
  const { url } = await edge(t, { token_admin: '' });
  for (const [method, path] of [
    ['POST', '/adm/revoke'],
    ['GET', '/adm/revocations'],
    ['DELETE', '/adm/revocations?token_id=x'],
    ['GET', '/adm/stats'],
  ] as const) {
    const res = await call(url, path, { method, headers: { 'x-auth-token': '' } });
    t.equal(res.status, 404, `${method} ${path}`);
    t.equal(res.error, 'ADMIN_DISABLED');
  }
});

t.test('admin_allow refuses other addresses, whatever the token', async (t) => {
  const { url } = await edge(t, { token_admin: ADMIN, admin_allow: ['10.0.0.0/8', '::1'] });
  for (const token of [ADMIN, 'wrong', undefined]) {
    const res = await call(url, '/adm/stats', {
      headers: token === undefined ? {} : { 'x-auth-token': token },
    });
    t.equal(res.status, 403);
    t.equal(res.error, 'ADMIN_IP_NOT_ALLOWED');
  }
  const open = await edge(t, { token_admin: ADMIN, admin_allow: ['127.0.0.0/8'] });
  const res = await call(open.url, '/adm/stats', { headers: { 'x-auth-token': ADMIN } });
  t.equal(res.status, 200, 'an address on the list passes');
  t.same(res.body, {
    stats_enabled: false,
    message: 'Stats are disabled: set "stats": true in config.json',
  });
});

t.test('two X-Auth-Token headers are refused even when one is right', async (t) => {
  const { url } = await edge(t, { token_admin: ADMIN });
  const headers = new Headers();
  headers.append('x-auth-token', ADMIN);
  headers.append('x-auth-token', 'other');
  // fetch joins repeated headers with ", ": the joined value is not the token.
  const res = await call(url, '/adm/stats', { headers });
  t.equal(res.status, 401);
  t.equal(res.error, 'ADMIN_TOKEN_INVALID');
});

t.test('a revocation through the API reaches the set and the store', async (t) => {
  const { url, node } = await edge(t, { token_admin: ADMIN });
  const codec = new TokenCodec(SECRET);
  const now = Math.floor(Date.now() / 1000);
  const { token, claims } = codec.issue('u', 600, now);
  const tokenId = codec.tokenId(claims);
  t.equal(
    (await call(url, '/x', { headers: { authorization: `Bearer ${token}` } })).error,
    'NO_ROUTE',
  );
  const res = await call(url, '/adm/revoke', {
    method: 'POST',
    headers: { 'x-auth-token': ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ token_id: tokenId }),
  });
  t.equal(res.status, 200);
  t.equal(res.body.known_here, false, 'never recorded here');
  t.ok(node.services.revocations.revokes({ tokenId, user: 'u', iat: now }, now), 'in the RAM set');
  node.store.refresh();
  t.same(
    node.store.revocationsInForce(now).tokens.map((r) => r.tokenId),
    [tokenId],
    'in the store',
  );
  const logout = await call(url, '/logout', { headers: { authorization: `Bearer ${token}` } });
  t.equal(logout.status, 401);
  t.equal(logout.error, 'TOKEN_REVOKED', 'a revoked token cannot log out');
});
