import t from 'tap';
import type { GatewayError } from '../shared/errors.js';
import {
  compileDropList,
  connectionListed,
  encodeIdentity,
  familyDecisionsSize,
  isRelayedResponseHeader,
  isTrustedOnlyHeader,
  upstreamRequestHeaders,
} from '../worker/upstream-headers.js';
import type { Exchange } from '../worker/uws-io.js';

t.test('families of trusted-only headers, in any spelling', async (t) => {
  for (const name of [
    'forwarded',
    'x-forwarded-for',
    'x-forwarded-anything-new',
    'x-forwarded',
    'x-forward-for',
    'x_forwarded_for',
    'x-real-ip',
    'x-client-ip',
    'client-ip',
    'true-client-ip',
    'x-cluster-client-ip',
    'cf-connecting-ip',
    'x-original-url',
    'x-original-uri',
    'x_original_url',
    'x-rewrite-url',
    'x-envoy-original-path',
    'x-http-method-override',
    'x-method-override',
    'x-user',
    'x_user',
    'x-user-roles',
    'x-username',
    'remote-user',
    'x-remote-user',
    'x-auth-request-email',
    'x-authenticated-userid',
    'x-consumer-id',
    'x-webauth-user',
    'x-pomerium-jwt-assertion',
    'cf-access-jwt-assertion',
    'x-amzn-oidc-data',
    'x-goog-authenticated-user-id',
    'x-ms-client-principal-id',
    'oidc-claim-email',
    'x-ssl-client-s-dn',
    'ssl-client-cert',
    'proxy-client-ip',
    'wl-proxy-client-ip',
    'http-client-ip',
    'incap-client-ip',
    'x-userinfo',
    'x-authentik-username',
    'x-vouch-user',
    'tailscale-user-login',
    'x-email',
    'x-access-token',
    'x-id-token',
    'x-jwt-assertion',
    'x-endpoint-api-userinfo',
    'x-apigateway-api-userinfo',
    'x-custom-ip-authorization',
    'impersonate-user',
    'impersonate-group',
    'x-originally-forwarded-for',
    'x-override-method',
    'x-http-method',
  ]) {
    t.ok(isTrustedOnlyHeader(name), name);
  }
  for (const name of [
    'accept',
    'authorization',
    'content-type',
    'cookie',
    'user-agent',
    'x-api-key',
    'x-request-id',
    'x-csrf-token',
    'x-userland',
    'x-forwardedness',
    'x-originator',
    'referer',
    'origin',
    'traceparent',
    'sec-fetch-site',
    'x-remotely-ok',
    'x-emails-sent',
    'x-client',
    'client-ipsum',
  ]) {
    t.notOk(isTrustedOnlyHeader(name), name);
  }
});

t.test('drop_request_headers adds exact names and prefixes, case and _ insensitive', async (t) => {
  const drop = compileDropList(['X-Corp-Identity', 'x_tenant-*']);
  t.ok(isTrustedOnlyHeader('x-corp-identity', drop));
  t.ok(isTrustedOnlyHeader('x_corp_identity', drop));
  t.ok(isTrustedOnlyHeader('x-tenant-id', drop));
  t.ok(isTrustedOnlyHeader('x-tenant-', drop));
  t.notOk(isTrustedOnlyHeader('x-corp-identity2', drop));
  t.notOk(isTrustedOnlyHeader('x-tenants', drop));
});

t.test('remembered decisions: the same answers, drop lists still applied, bounded', async (t) => {
  const drop = compileDropList(['x-corp-identity', 'x-tenant-*']);
  // Asked without a drop list first (remembered: not in a family), then with one.
  for (let round = 0; round < 3; round++) {
    t.notOk(isTrustedOnlyHeader('x-corp-identity'), `round ${round}: not a family`);
    t.ok(isTrustedOnlyHeader('x-corp-identity', drop), `round ${round}: dropped by the route`);
    t.ok(isTrustedOnlyHeader('x_corp_identity', drop), `round ${round}: _ spelling dropped`);
    t.ok(isTrustedOnlyHeader('x-tenant-id', drop), `round ${round}: prefix dropped`);
    t.notOk(isTrustedOnlyHeader('x-tenant-id'), `round ${round}: not elsewhere`);
    t.ok(isTrustedOnlyHeader('x-forwarded-for'), `round ${round}: a family, remembered`);
    t.ok(isTrustedOnlyHeader('x_forwarded_for'), `round ${round}: its _ spelling`);
    t.notOk(isTrustedOnlyHeader('accept', drop), `round ${round}: an ordinary name`);
  }
  // A client spraying names cannot grow the memory: it is cleared at its bound.
  for (let i = 0; i < 5000; i++) isTrustedOnlyHeader(`x-spray-${i}`);
  t.ok(familyDecisionsSize() <= 1024, `${familyDecisionsSize()} names remembered at most`);
  t.ok(isTrustedOnlyHeader('x-real-ip'), 'decisions after a clear are still right');
  t.ok(isTrustedOnlyHeader('true-client-ip'));
  t.notOk(isTrustedOnlyHeader('x-spray-1'));
});

t.test('identity values: plain ASCII unchanged, everything else percent-encoded', async (t) => {
  t.equal(encodeIdentity('alice'), 'alice');
  t.equal(encodeIdentity('bob.smith@example.com'), 'bob.smith@example.com');
  t.equal(encodeIdentity('a b'), 'a%20b');
  t.equal(encodeIdentity('100%'), '100%25');
  t.equal(encodeIdentity('josé'), 'jos%C3%A9');
  for (const name of [
    'ａｌｉｃｅ',
    '名前',
    'emoji 🎉',
    'tab\there',
    'x%20y',
    ' lead',
    'trail ',
    'é%',
  ]) {
    const encoded = encodeIdentity(name);
    t.match(encoded, /^[\x21-\x7e]+$/, `${JSON.stringify(name)}: printable ASCII`);
    t.equal(decodeURIComponent(encoded), name, `${JSON.stringify(name)}: round trip`);
  }
});

function exchange(headers: string[], host = 'gw.test'): Exchange {
  return { headers, host } as unknown as Exchange;
}

t.test('upstream request headers: hop-by-hop, listed, trusted-only and credentials', async (t) => {
  const out = upstreamRequestHeaders(
    exchange([
      'host',
      'gw.test',
      'connection',
      'keep-alive, x-secret-hop',
      'x-secret-hop',
      'must-go',
      'keep-alive',
      'timeout=5',
      'te',
      'trailers',
      'upgrade',
      'websocket',
      'expect',
      '100-continue',
      'user-agent',
      'curl',
      'x-forwarded-for',
      '6.6.6.6',
      'x-user',
      'root',
      'authorization',
      'Bearer backend',
      'authorization',
      'Bearer ours',
      'accept',
      'text/html',
      'content-length',
      '5',
    ]),
    {
      forwardedFor: '10.0.0.1',
      proto: 'https',
      identity: { user: 'alice', roles: 'a,b' },
      dropAllAuthorization: false,
      withheldAuthorization: ['Bearer ours'],
      stripSessionCookie: false,
      drop: compileDropList([]),
    },
  );
  const pairs: [string, string][] = [];
  for (let i = 0; i < out.length; i += 2) pairs.push([out[i]!, out[i + 1]!]);
  t.same(pairs, [
    ['authorization', 'Bearer backend'],
    ['accept', 'text/html'],
    ['content-length', '5'],
    ['user-agent', 'ProxyAuth'],
    ['x-forwarded-for', '10.0.0.1'],
    ['x-forwarded-proto', 'https'],
    ['x-forwarded-host', 'gw.test'],
    ['x-user', 'alice'],
    ['x-user-roles', 'a,b'],
  ]);
  const none = upstreamRequestHeaders(
    exchange(['authorization', 'Bearer a', 'authorization', 'x']),
    {
      forwardedFor: '10.0.0.1',
      proto: 'http',
      identity: undefined,
      dropAllAuthorization: true,
      withheldAuthorization: undefined,
      stripSessionCookie: false,
      drop: compileDropList([]),
    },
  );
  t.notOk(none.includes('authorization'), 'every authorization dropped on a secure route');
  t.notOk(none.includes('x-user'), 'no identity on a public route');
});

t.test('a chain relayed from a trusted proxy is checked like a client header', async (t) => {
  const ex = { headers: [], host: 'gw.test', ip: '127.0.0.1' } as unknown as Exchange;
  const send = (forwardedFor: string) =>
    upstreamRequestHeaders(ex, {
      forwardedFor,
      proto: 'http',
      identity: undefined,
      dropAllAuthorization: false,
      withheldAuthorization: undefined,
      stripSessionCookie: false,
      drop: compileDropList([]),
    });
  const xff = (out: string[]) => out[out.indexOf('x-forwarded-for') + 1];
  t.equal(xff(send('127.0.0.1')), '127.0.0.1');
  t.equal(xff(send('10.9.8.7, 127.0.0.1')), '10.9.8.7, 127.0.0.1');
  t.equal(xff(send('caf\u00e9, 127.0.0.1')), 'caf\u00c3\u00a9, 127.0.0.1', 'UTF-8 bytes, as sent');
  const error = t.throws(() => send('a\u0001b, 127.0.0.1')) as GatewayError;
  t.equal(error.code, 'BAD_REQUEST');
});

t.test('response headers: hop-by-hop and uWS-owned ones are not relayed', async (t) => {
  const headers = { connection: 'keep-alive, x-hop', 'x-hop': '1', 'x-end': '2' };
  const listed = connectionListed(headers);
  for (const name of [
    'connection',
    'keep-alive',
    'transfer-encoding',
    'content-length',
    'date',
    'server',
    'x-hop',
  ]) {
    t.notOk(isRelayedResponseHeader(name, listed), name);
  }
  t.ok(isRelayedResponseHeader('x-end', listed));
  t.ok(isRelayedResponseHeader('set-cookie', connectionListed({ connection: 'close' })));
  t.equal(connectionListed({ connection: 'keep-alive' }), undefined, 'common values build no set');
});

t.test('a Connection value of one token lists that header, in any case and spacing', async (t) => {
  // upstream-headers.ts reads a comma-free Connection value without split: every spelling of
  // one token must still drop the header it names, `close` included (a header named Close is
  // dropped, not forwarded); `keep-alive` (always dropped) builds no set.
  const context = {
    forwardedFor: '10.0.0.1',
    proto: 'http' as const,
    identity: undefined,
    dropAllAuthorization: false,
    withheldAuthorization: undefined,
    stripSessionCookie: false,
    drop: compileDropList([]),
  };
  const names = (out: string[]) => out.filter((_, i) => i % 2 === 0);
  for (const [value, dropped] of [
    ['x-hop', 'x-hop'],
    ['X-Hop', 'x-hop'],
    ['  x-hop\t', 'x-hop'],
    ['X-HOP ', 'x-hop'],
    ['close', 'close'],
    ['Close', 'close'],
    ['keep-alive', 'keep-alive'],
    ['Keep-Alive', 'keep-alive'],
  ] as const) {
    const out = upstreamRequestHeaders(
      exchange(['connection', value, dropped, 'v', 'x-other', 'w']),
      context,
    );
    t.notOk(names(out).includes(dropped), `Connection: ${JSON.stringify(value)} drops ${dropped}`);
    t.ok(names(out).includes('x-other'), `${JSON.stringify(value)}: the others go on`);
  }
  const twoLines = upstreamRequestHeaders(
    exchange([
      'connection',
      'keep-alive',
      'connection',
      'x-a',
      'x-a',
      '1',
      'x-b',
      '2',
      'keep-alive',
      'timeout=1',
    ]),
    context,
  );
  t.same(names(twoLines).slice(0, 1), ['x-b'], 'a second Connection line is read too');
  const listed = upstreamRequestHeaders(
    exchange(['connection', 'keep-alive, X-A ,x-b', 'x-a', '1', 'x-b', '2', 'x-c', '3']),
    context,
  );
  t.same(names(listed).slice(0, 1), ['x-c'], 'a list: every token');
  t.same(connectionListed({ connection: 'Close' }), new Set(['close']));
});
