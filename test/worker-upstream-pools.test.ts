import { readFileSync } from 'node:fs';
import t from 'tap';
import type { RouteConfig } from '../conf/routes-schema.js';
import { routeSchema } from '../conf/routes-schema.js';
import { routeProfile } from '../worker/connection-profile.js';
import { poolKey, UpstreamPools } from '../worker/upstream-pools.js';
import { makeCertAuthority } from './helpers/cert-authority.js';

const OPTIONS = { maxConnections: 4, timeoutMs: 1000, keepAliveMaxMs: 4000 };
const ORIGIN = 'https://backend.test';
const pki = await makeCertAuthority(t.testdir({}));
const files = {
  [pki.caFile]: readFileSync(pki.caFile).toString('base64'),
  [pki.clientP12File]: readFileSync(pki.clientP12File).toString('base64'),
  [pki.clientCertFile]: readFileSync(pki.clientCertFile).toString('base64'),
};

function route(extra: Record<string, unknown> = {}): RouteConfig {
  return routeSchema.parse({ prefix: '/api', target: `${ORIGIN}/api`, ...extra });
}

const p12 = { file: pki.clientP12File, password: pki.clientP12Password };

t.test('routeProfile: none for a default route, a stable key otherwise', async (t) => {
  t.equal(routeProfile(route(), files), undefined, 'direct with defaults: no profile at all');
  const a = routeProfile(route({ ca: pki.caFile, cert: p12 }), files);
  const b = routeProfile(route({ ca: pki.caFile, cert: p12 }), files);
  t.ok(a && b);
  t.equal(a?.key, b?.key, 'the same settings and bytes: the same key');
  t.ok(a?.tls?.secureContext, 'a secure context built once');
  t.equal(a?.tls?.rejectUnauthorized, true);
  const changed = { ...files, [pki.caFile]: files[pki.clientCertFile]! };
  t.not(routeProfile(route({ ca: pki.caFile, cert: p12 }), changed)?.key, a?.key, 'new CA bytes');
  t.not(routeProfile(route({ ca: pki.caFile }), files)?.key, a?.key, 'no client cert');
  const noVerify = routeProfile(route({ tls_verify: false }), files);
  t.equal(noVerify?.tls?.rejectUnauthorized, false);
  const proxied = routeProfile(
    route({ proxy: true, proxy_config: 'http://u:p%3Aw@proxy:3128' }),
    files,
  );
  t.same(
    { ...proxied?.proxy },
    {
      host: 'proxy',
      port: 3128,
      origin: 'http://proxy:3128',
      authorization: `Basic ${Buffer.from('u:p:w').toString('base64')}`,
    },
    'credentials percent-decoded into Basic, the origin without them',
  );
  t.not(
    routeProfile(route({ proxy: true, proxy_config: 'http://u:other@proxy:3128' }), files)?.key,
    proxied?.key,
    'other proxy credentials: another pool',
  );
  t.equal(
    routeProfile(route({ proxy_config: 'http://proxy:3128' }), files),
    undefined,
    'proxy_config without proxy: true is unused',
  );
  t.throws(
    () => routeProfile(route({ ca: pki.caFile }), {}),
    /missing from the config snapshot/,
    'bytes missing from the snapshot are a bug, not a silent default',
  );
});

t.test('pools: one per origin and profile, kept across reloads while unchanged', async (t) => {
  const pools = new UpstreamPools();
  const profile = routeProfile(route({ ca: pki.caFile }), files)!;
  const other = routeProfile(route({ tls_verify: false }), files)!;
  const plain = pools.get(ORIGIN, OPTIONS);
  const withCa = pools.get(ORIGIN, OPTIONS, profile);
  const noVerify = pools.get(ORIGIN, OPTIONS, other);
  t.not(plain, withCa, 'same origin, other profile: another pool');
  t.not(withCa, noVerify);
  // A reload builds the profile again from the same bytes: same key, same warm pool.
  const rebuilt = routeProfile(route({ ca: pki.caFile }), files)!;
  t.not(rebuilt, profile);
  t.equal(pools.get(ORIGIN, OPTIONS, rebuilt), withCa, 'an unchanged profile keeps its pool');
  t.equal(poolKey(ORIGIN), ORIGIN, 'a direct default pool is keyed by its origin');
  const closed = (d: object) => (d as { closed: boolean }).closed;
  pools.retainOnly(new Set([poolKey(ORIGIN), poolKey(ORIGIN, other)]));
  t.ok(closed(withCa), 'a profile no route uses any more is closed');
  t.notOk(closed(plain) || closed(noVerify), 'the pools still used are not');
  t.equal(pools.get(ORIGIN, OPTIONS), plain, 'the others stay');
  t.equal(pools.get(ORIGIN, OPTIONS, other), noVerify);
  await pools.destroyAll();
});
