// Key rotation on one in-process edge: the runtime builds its codec from the snapshot's key ring,
// a reload that adds a key keeps old tokens working, one that removes a key refuses its tokens
// at once (cached or not), and a revocation by token id outlives the rotation.
import t, { type Test } from 'tap';
import type { CryptoPool } from '../crypto-pool/pool.js';
import type { ConfigSnapshot, KeyRingSnapshot } from '../shared/ipc.js';
import { TokenCodec } from '../shared/token-codec.js';
import { Runtime } from '../worker/runtime.js';
import { inProcessNode, serveEdgeState } from './helpers/edge-services.js';
import { startUpstream } from './helpers/upstream.js';

const SECRET = 'key-ring-test config secret 0123456789abcdef0123456789abcdef0123456789';
const A = 'key-ring-test key A 0123456789abcdef0123456789abcdef0123456789abcdef0123';
const B = 'key-ring-test key B fedcba9876543210fedcba9876543210fedcba9876543210fedc';
const ADMIN = 'd'.repeat(64);
const PASSWORD = 'right password';
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA';
// Argon2 is not what this test is about: a stand-in that accepts PASSWORD for HASH.
const crypto = {
  hashPassword: async () => 'unused',
  verifyPassword: async (hash: string, password: string) => hash === HASH && password === PASSWORD,
} as unknown as CryptoPool;

const now = () => Math.floor(Date.now() / 1000);

async function edge(t: Test) {
  const upstream = await startUpstream();
  t.teardown(() => upstream.close());
  const node = await inProcessNode({ crypto });
  let generation = 1;
  const snapshot = (keyRing: KeyRingSnapshot): ConfigSnapshot => ({
    generation: generation++,
    keyRing,
    configDir: '/virtual',
    dataDir: node.dataDir,
    files: { config: '/virtual/config.json', routes: '/virtual/routes.yml' },
    raw: {
      config: { secret: SECRET, token_admin: ADMIN, users: [{ username: 'u', password: HASH }] },
      routes: { routes: [{ prefix: '/sec', target: upstream.origin }] },
    },
  });
  const first = await Runtime.build(snapshot({ active: A, verifyOnly: [] }), node.services);
  const { url, state } = await serveEdgeState(t, node, first);
  /** Applies a ring as the edge's apply-config does: build against the previous runtime. */
  const apply = async (keyRing: KeyRingSnapshot): Promise<void> => {
    state.runtime = await Runtime.build(snapshot(keyRing), node.services, state.runtime);
  };
  return { url, state, apply, node };
}

async function use(url: string, token: string): Promise<{ status: number; error: unknown }> {
  const res = await fetch(`${url}/sec/echo`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { error?: unknown };
  return { status: res.status, error: body.error };
}

async function login(url: string): Promise<{ token: string; token_id: string }> {
  const res = await fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'u', password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return (await res.json()) as { token: string; token_id: string };
}

async function revoke(url: string, tokenId: string): Promise<number> {
  const res = await fetch(`${url}/adm/revoke`, {
    method: 'POST',
    headers: { 'x-auth-token': ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ token_id: tokenId }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The key id in a token's header (docs/token-format.md: bytes 1 to 4, big-endian). */
const keyIdOf = (token: string): number => Buffer.from(token, 'base64url').readUInt32BE(1);

t.test(
  'rotation: old tokens keep working, new ones use the new key, removal refuses',
  async (t) => {
    const { url, state, apply } = await edge(t);
    const a = new TokenCodec(A);
    const b = new TokenCodec(B);
    const before = await login(url);
    t.equal(keyIdOf(before.token), a.keyId, 'issued under the active key A');
    t.equal((await use(url, before.token)).status, 200, 'and cached by this use');
    const codecBefore = state.runtime.codec;

    await apply({ active: A, verifyOnly: [] });
    t.equal(state.runtime.codec, codecBefore, 'an unchanged ring keeps the codec (and the cache)');

    await apply({ active: B, verifyOnly: [A] });
    t.not(state.runtime.codec, codecBefore, 'a changed ring makes a new codec');
    t.equal((await use(url, before.token)).status, 200, "A's token still works after rotation");
    const after = await login(url);
    t.equal(keyIdOf(after.token), b.keyId, 'new tokens carry the key id of B');
    t.equal((await use(url, after.token)).status, 200);
    t.equal(
      (await use(url, a.issue('u', 600, now()).token)).status,
      200,
      'a token of A never seen before verifies too',
    );

    await apply({ active: B, verifyOnly: [] });
    t.same(await use(url, before.token), { status: 401, error: 'TOKEN_INVALID' }, 'A removed');
    t.equal((await use(url, after.token)).status, 200, "B's token still works");
  },
);

t.test('a revocation by token id holds across the rotation', async (t) => {
  const { url, apply, node } = await edge(t);
  const a = new TokenCodec(A);
  const early = await login(url);
  const late = await login(url);
  const verified = a.verify(early.token, now());
  if (!verified.ok) throw new Error('test setup: the login token does not verify under A');
  t.equal(early.token_id, a.tokenId(verified.claims), 'POST /auth answers the id under A');
  t.equal(await revoke(url, early.token_id), 200);
  t.same(await use(url, early.token), { status: 401, error: 'TOKEN_REVOKED' });
  t.equal((await use(url, late.token)).status, 200, 'late is cached, clean');

  await apply({ active: B, verifyOnly: [A] });
  t.same(
    await use(url, early.token),
    { status: 401, error: 'TOKEN_REVOKED' },
    'still revoked under a ring whose active key is B',
  );
  // Revoked after the rotation by the id it was given under A: the same id under the new ring.
  t.equal(await revoke(url, late.token_id), 200);
  t.same(await use(url, late.token), { status: 401, error: 'TOKEN_REVOKED' });
  node.store.refresh();
  t.same(
    node.store
      .revocationsInForce(now())
      .tokens.map((r) => r.tokenId)
      .sort(),
    [early.token_id, late.token_id].sort(),
  );
});

t.test('a ring the codec cannot hold is refused and the previous runtime stays', async (t) => {
  const { url, state, apply } = await edge(t);
  const token = (await login(url)).token;
  const running = state.runtime;
  // Two materials whose key ids collide (see test/shared-token-codec-ring.test.ts).
  await t.rejects(
    apply({
      active: B,
      verifyOnly: ['key ring collision test 14478', 'key ring collision test 37071'],
    }),
    { name: 'TokenCodecError', code: 'TOKEN_KEY_ID_COLLISION', message: /41bc6811/ },
  );
  t.equal(state.runtime, running, 'not swapped');
  t.equal((await use(url, token)).status, 200, 'still serving under the previous ring');
});
