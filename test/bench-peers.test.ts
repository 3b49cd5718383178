// The bench's JWT peers (HAProxy, fastify) refuse what a JWT gateway must refuse, forward what
// it must forward, and the runner's tokens are what they check. HAProxy is optional: without it
// (or without its JWT converters) its tests skip with a message. No timed load here.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import t, { type Test } from 'tap';
import { CleanupStack } from '../bench/cleanup-stack.js';
import { fastifyPeerMissing, startFastifyPeer } from '../bench/fastify.js';
import {
  findHaproxy,
  haproxyRateFor,
  renderHaproxyCfg,
  startHaproxy,
  versionAtLeast,
} from '../bench/haproxy.js';
import { mintBenchJwt, mintJwt, newJwtSecret } from '../bench/jwt.js';
import { packageRoot } from '../bench/paths.js';
import { BENCH_HIGH_LIMIT, echoAnswer, LARGE_BODY_BYTES, largeBody } from '../bench/scenarios.js';
import type { UpstreamMessage } from '../bench/upstream-message.js';

const dist = join(packageRoot(), 'dist', 'bench');
const SECRET = newJwtSecret();
const haproxy = await findHaproxy();
/** Why the HAProxy tests skip, or false when they run. */
const haproxySkip: string | false = !haproxy
  ? 'haproxy not installed (apt-get install haproxy)'
  : haproxy.hasJwt
    ? false
    : `HAProxy ${haproxy.version} has no JWT converters (2.5+)`;
const fastifySkip: string | false = (await fastifyPeerMissing()) ?? false;

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Tokens every JWT peer must refuse, by what is wrong with them. */
async function refusedTokens(): Promise<Record<string, string | undefined>> {
  const now = Math.floor(Date.now() / 1000);
  const key = new TextEncoder().encode(SECRET);
  const good = await mintJwt(SECRET, { subject: 'bench', expiresAt: now + 3600 });
  const [header, , signature] = good.split('.');
  return {
    'missing token': undefined,
    'wrong signature': await mintJwt(newJwtSecret(), { subject: 'bench', expiresAt: now + 3600 }),
    expired: await mintJwt(SECRET, { subject: 'bench', expiresAt: now - 60 }),
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'bench', exp: now + 3600 })}.`,
    'alg HS512, same secret': await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setExpirationTime(now + 3600)
      .sign(key),
    'no exp': await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'HS256' }).sign(key),
    'payload changed under the signature': `${header}.${b64({ sub: 'admin', exp: now + 3600 })}.${signature}`,
    'not a JWT': 'abc',
  };
}

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

/** Checks a started peer: the runner's token passes on all three shapes, the rest is 401. */
async function checkPeer(t: Test, baseUrl: string): Promise<void> {
  const token = await mintBenchJwt(SECRET, 'bench');
  const auth = { authorization: `Bearer ${token}` };
  const hello = await fetch(`${baseUrl}/hello`, { headers: auth });
  t.same([hello.status, await hello.text()], [200, 'hello'], 'the runner token passes');
  const large = await fetch(`${baseUrl}/large`, { headers: auth });
  const body = await large.text();
  t.equal(body.length, LARGE_BODY_BYTES, '100 KiB forwarded');
  t.ok(body === largeBody(), 'the large body is intact');
  const post = await fetch(`${baseUrl}/echo`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: 'x'.repeat(1024),
  });
  t.same([post.status, await post.text()], [200, echoAnswer(1024)], 'the POST body is forwarded');
  for (const [why, bad] of Object.entries(await refusedTokens())) {
    const headers: Record<string, string> =
      bad === undefined ? {} : { authorization: `Bearer ${bad}` };
    const res = await fetch(`${baseUrl}/hello`, { headers });
    await res.arrayBuffer();
    t.equal(res.status, 401, `${why}: 401`);
  }
  const basic = await fetch(`${baseUrl}/hello`, { headers: { authorization: `Basic ${token}` } });
  await basic.arrayBuffer();
  t.equal(basic.status, 401, 'a valid token under another scheme: 401');
}

t.test('the runner mints HS256 tokens with sub and an exp an hour away', async (t) => {
  const token = await mintBenchJwt(SECRET, 'bench');
  const [header, payload] = token
    .split('.')
    .slice(0, 2)
    .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  t.match(header, { alg: 'HS256', typ: 'JWT' });
  const now = Math.floor(Date.now() / 1000);
  t.equal(payload.sub, 'bench');
  t.ok(Math.abs(payload.exp - (now + 3600)) <= 5, 'exp in one hour');
  t.not(newJwtSecret(), newJwtSecret(), 'a new secret per run');
  t.match(newJwtSecret(), /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
});

t.test(
  'renderHaproxyCfg: JWT checks in order, rate limit, pooled upstream, nothing privileged',
  async (t) => {
    const cfg = renderHaproxyCfg({
      port: 1234,
      upstreamPort: 5678,
      threads: 2,
      jwtSecret: SECRET,
      requestsPerSecond: haproxyRateFor(BENCH_HIGH_LIMIT),
    });
    t.match(cfg, /^ {2}nbthread 2$/m);
    t.match(cfg, /bind 127\.0\.0\.1:1234\n/);
    t.match(cfg, /server up 127\.0\.0\.1:5678\n/);
    t.match(cfg, /http-reuse always/);
    t.match(cfg, /track-sc0 src/);
    t.match(cfg, /deny deny_status 429 if \{ sc_http_req_rate\(0\) gt 2000000 \}/);
    t.match(cfg, /var\(txn\.jwt_alg\) -m str HS256/);
    t.match(cfg, new RegExp(`jwt_verify\\("HS256","${SECRET}"\\) -m int 1`));
    t.match(cfg, /sub\(txn\.now\) gt 0/);
    const order = [
      'track-sc0',
      'deny_status 429',
      'http_auth_bearer',
      'jwt_alg) -m str',
      'jwt_verify',
      'sub(txn.now)',
    ];
    const at = order.map((needle) => cfg.indexOf(needle));
    t.same(
      [...at].sort((a, b) => a - b),
      at,
      'rate limit, then alg, signature, expiry',
    );
    for (const word of ['stats', 'chroot', 'user ', 'group ', 'daemon', 'log ']) {
      t.notOk(cfg.includes(word), `no ${word.trim()}`);
    }
    t.ok(versionAtLeast('2.6.12-1+deb12u4', 2, 5));
    t.ok(versionAtLeast('3.0.1', 2, 5));
    t.notOk(versionAtLeast('2.4.22', 2, 5));
    t.notOk(versionAtLeast('unknown', 2, 5));
  },
);

t.test(
  'HAProxy peer: the rendered config refuses bad tokens and forwards good ones',
  { skip: haproxySkip },
  async (t) => {
    const install = haproxy!;
    const upstreamPort = await startBenchUpstream(t);
    const cleanup = new CleanupStack();
    t.teardown(() => cleanup.run());
    const dir = t.testdir({});
    const params = { upstreamPort, threads: 1, jwtSecret: SECRET, requestsPerSecond: 1_000_000 };
    const service = await startHaproxy(install, dir, params, cleanup);
    await checkPeer(t, service.baseUrl);
    await t.rejects(
      startHaproxy(install, join(dir, 'b'), { ...params, jwtSecret: 'a"b' }, cleanup),
      {
        code: 'BENCH_HAPROXY',
      },
      'a secret that cannot be quoted is refused',
    );
  },
);

t.test('HAProxy peer: past the stick-table rate, 429', { skip: haproxySkip }, async (t) => {
  const install = haproxy!;
  const upstreamPort = await startBenchUpstream(t);
  const cleanup = new CleanupStack();
  t.teardown(() => cleanup.run());
  const params = { upstreamPort, threads: 1, jwtSecret: SECRET, requestsPerSecond: 2 };
  const service = await startHaproxy(install, t.testdir({}), params, cleanup);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${service.baseUrl}/hello`);
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  t.equal(statuses[0], 401, 'under the rate: the token check answers');
  t.ok(statuses.includes(429), `past 2 requests a second: 429 (${statuses.join(' ')})`);
});

t.test(
  'fastify peer: jose refuses bad tokens, one worker per process asked',
  { skip: fastifySkip },
  async (t) => {
    const entry = join(dist, 'fastify-peer.js');
    t.ok(existsSync(entry), 'the peer is built (npm run build)');
    const upstreamPort = await startBenchUpstream(t);
    const cleanup = new CleanupStack();
    t.teardown(() => cleanup.run());
    const service = await startFastifyPeer(
      { entry, upstreamPort, processes: 2, jwtSecret: SECRET },
      cleanup,
    );
    await checkPeer(t, service.baseUrl);
    const { childPids } = await import('../bench/process-memory.js');
    t.equal(childPids(service.pid as number).length, 2, 'two workers');
  },
);

t.test('a peer that is not installed is skipped, not failed or started', async (t) => {
  const { startJwtPeers } = await import('../bench/jwt-peers.js');
  const skipped: string[] = [];
  const started: string[] = [];
  const starts = {
    wanted: () => true,
    skip: (service: string, reason: string) => {
      skipped.push(`${service}: ${reason}`);
    },
    start: async (service: string) => {
      started.push(service);
      return undefined;
    },
  };
  const setup = { dir: '/nonexistent', upstreamPort: 1, processes: 2, cleanup: new CleanupStack() };
  const old = { path: '/usr/sbin/haproxy', version: '2.4.22', hasJwt: false };
  const services = await startJwtPeers(
    { haproxy: old, fastifyMissing: 'jose is not installed' },
    setup,
    starts,
  );
  t.same(services, {});
  t.same(skipped, [
    'haproxy-jwt: HAProxy 2.4.22 has no JWT converters (2.5+)',
    'fastify-jwt: jose is not installed',
  ]);
  t.same(started, [], 'nothing started');
  skipped.length = 0;
  await startJwtPeers({ haproxy: undefined, fastifyMissing: undefined }, setup, {
    ...starts,
    wanted: (service: string) => service === 'haproxy-jwt',
  });
  t.same(skipped, ['haproxy-jwt: haproxy not installed']);
  t.same(started, [], 'fastify not selected: not started');
});
