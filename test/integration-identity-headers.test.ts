// What a client may and may not tell a backend: forwarding, identity and override headers,
// Authorization headers, identity encoding, methods.
import t from 'tap';
import { TokenCodec } from '../shared/token-codec.js';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const SECRET = 'identity-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const FULLWIDTH = '\uff41\uff4c\uff49\uff43\uff45'; // ａｌｉｃｅ
const upstream = await startUpstream();
const seen: Echo[] = [];
const methodsSeen: string[] = [];
upstream.server.on('request', (req) => methodsSeen.push(req.method ?? ''));
const gw: RunningGateway = await startGateway({
  users: [
    { username: 'alice', password: 'alice-password', roles: ['read', 'write'] },
    { username: FULLWIDTH, password: 'wide-password', roles: ['r\u00f4le', 'team a', 'x%y'] },
    { username: 'Ann Smith%', password: 'ann-password', roles: [] },
  ],
  config: { secret: SECRET, drop_request_headers: ['x-corp-identity', 'x-tenant-*'] },
  routes: `routes:
  - prefix: /secure
    target: ${upstream.origin}
  - prefix: /public
    target: ${upstream.origin}
    secure: false
  - prefix: /readonly
    target: ${upstream.origin}
    allow_methods: [GET]
`,
});
const alice = await login(gw.url, 'alice', 'alice-password');
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

async function echo(
  path: string,
  headers: Record<string, string> | (readonly [string, string])[] = {},
) {
  const res = await fetch(`${gw.url}${path}`, {
    headers: Array.isArray(headers) ? headers.map(([k, v]) => [k, v]) : headers,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  const body = JSON.parse(text) as Echo;
  seen.push(body);
  return body;
}

// Headers a backend may trust as said by a proxy in front of it, in the spellings frameworks use.
const TRUSTED_ONLY = [
  'X-Forwarded-For',
  'X-Forwarded-Host',
  'X-Forwarded-Proto',
  'X-Forwarded-Port',
  'X-Forwarded-Prefix',
  'X-Forwarded-Uri',
  'X-Forwarded-Path',
  'X-Forwarded-Server',
  'X-Forwarded-Ssl',
  'X-Forwarded-Scheme',
  'X-Forwarded-Method',
  'X-Forwarded-User',
  'X-Forwarded-Email',
  'X-Forwarded-Groups',
  'X-Forwarded-Access-Token',
  'X-Forwarded-Client-Cert',
  'X-Forward-For',
  'Forwarded',
  'X-Real-IP',
  'X-Client-IP',
  'Client-IP',
  'True-Client-IP',
  'X-Cluster-Client-IP',
  'Fastly-Client-IP',
  'CF-Connecting-IP',
  'X-Originating-IP',
  'X-Remote-Addr',
  'X-Remote-IP',
  'X-ProxyUser-Ip',
  'X-Original-URL',
  'X-Original-URI',
  'X-Original-Host',
  'X-Original-Method',
  'X-Rewrite-URL',
  'X-Envoy-Original-Path',
  'X-Host',
  'X-HTTP-Host-Override',
  'X-Script-Name',
  'X-HTTP-Method-Override',
  'X-HTTP-Method',
  'X-Method-Override',
  'X-User',
  'X-User-Roles',
  'X-User-Id',
  'X-Username',
  'Remote-User',
  'Remote-Groups',
  'Remote-Email',
  'X-Remote-User',
  'X-Auth-Request-User',
  'X-Auth-Request-Email',
  'X-Auth-Userid',
  'X-Auth-Roles',
  'X-Authenticated-Userid',
  'X-Consumer-Username',
  'X-Credential-Identifier',
  'X-WEBAUTH-USER',
  'X-Pomerium-Claim-Email',
  'Cf-Access-Authenticated-User-Email',
  'X-Amzn-Oidc-Identity',
  'X-Goog-Authenticated-User-Email',
  'X-MS-Client-Principal-Name',
  'X-MS-Token-Aad-Id-Token',
  'OIDC-Claim-Sub',
  'X-SSL-Client-Cert',
  'SSL-Client-Verify',
  'X-ARR-ClientCert',
  'Proxy-Client-IP',
  'WL-Proxy-Client-IP',
  'HTTP-Client-IP',
  'Incap-Client-IP',
  'X-Userinfo',
  'X-Authentik-Username',
  'X-Vouch-User',
  'Tailscale-User-Login',
  'X-Email',
  'X-Access-Token',
  'X-JWT-Assertion',
  'Impersonate-User',
  'X-Originally-Forwarded-For',
  'X-Override-Method',
  // Operator additions (drop_request_headers).
  'X-Corp-Identity',
  'X-Tenant-Id',
  'X-Tenant-Name',
];

const BENIGN = {
  accept: 'application/json',
  'accept-language': 'fr',
  'x-api-key': 'backend-key',
  'x-request-id': 'req-1',
  'x-csrf-token': 'csrf',
  'if-none-match': '"v1"',
  'x-corp-other': 'kept',
  'x-userland': 'kept',
  'x-forwardedness': 'kept',
};

t.test(
  'forwarding, identity and override headers from clients never reach a backend',
  async (t) => {
    // uWS stalls a request of 99 header lines or more (README, Known limits): in batches.
    const batches: string[][] = [];
    for (let i = 0; i < TRUSTED_ONLY.length; i += 40) batches.push(TRUSTED_ONLY.slice(i, i + 40));
    for (const batch of batches) {
      const sent: [string, string][] = batch.map((name) => [name, 'forged']);
      for (const [name, value] of Object.entries(BENIGN)) sent.push([name, value]);
      for (const [path, headers] of [
        ['/public/x', sent],
        ['/secure/x', [...sent, ['authorization', `Bearer ${alice}`]]],
      ] as const) {
        const got = await echo(path, [...headers]);
        for (const name of batch) {
          const value = got.headers[name.toLowerCase()];
          t.not(value, 'forged', `${path}: ${name} is not the client's`);
        }
        for (const [name, value] of Object.entries(BENIGN)) {
          t.equal(got.headers[name], value, `${path}: ${name} passes`);
        }
        t.equal(
          got.headers['x-forwarded-for'],
          '127.0.0.1',
          `${path}: x-forwarded-for is the peer`,
        );
        t.equal(got.headers['x-forwarded-proto'], 'http');
        t.match(got.headers['x-forwarded-host'], /^127\.0\.0\.1:\d+$/);
      }
      const secure = seen.at(-1)!;
      t.equal(secure.headers['x-user'], 'alice', "x-user is the gateway's");
      t.equal(secure.headers['x-user-roles'], 'read,write');
    }
  },
);

t.test('X-HTTP-Method-Override cannot sidestep allow_methods', async (t) => {
  const got = await echo('/readonly/x', {
    authorization: `Bearer ${alice}`,
    'x-http-method-override': 'DELETE',
    'x-http-method': 'DELETE',
    'x-method-override': 'DELETE',
  });
  t.equal(got.method, 'GET');
  for (const name of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
    t.equal(got.headers[name], undefined, `${name} dropped`);
  }
});

t.test('every Authorization header is examined on a public route', async (t) => {
  const codec = new TokenCodec(SECRET);
  const now = Math.floor(Date.now() / 1000);
  const expired = codec.issue('alice', 60, now - 3600).token;
  const cases: [string, string[], string[]][] = [
    ['backend token, then ours', ['Bearer backend-own', `Bearer ${alice}`], ['Bearer backend-own']],
    ['ours, then backend token', [`Bearer ${alice}`, 'Bearer backend-own'], ['Bearer backend-own']],
    [
      'an expired token of ours',
      [`Bearer ${expired}`, 'Basic Zm9vOmJhcg=='],
      ['Basic Zm9vOmJhcg=='],
    ],
    ['lower-case scheme', [`bearer ${alice}`], []],
    ['another scheme', [`Token ${alice}`], []],
    ['bare', [alice], []],
    ['quoted', [`Bearer "${alice}"`], []],
    ['as a parameter', [`Bearer token=${alice}`], []],
    ['in a list', [`Basic abc, Bearer ${alice}`], []],
    ['after a comma', [`Bearer,${alice}`], []],
    ['only a backend token', ['Bearer backend-own'], ['Bearer backend-own']],
    [
      'a backend JWT',
      ['Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVzLW9mLWEtand0'],
      ['Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVzLW9mLWEtand0'],
    ],
  ];
  for (const [name, values, forwarded] of cases) {
    const head =
      'GET /public/auth-check HTTP/1.1\r\nHost: x\r\n' +
      values.map((v) => `Authorization: ${v}\r\n`).join('') +
      '\r\n';
    const result = await rawExchange(gw.port, [head]);
    const res = result.responses[0];
    t.equal(res?.status, 200, `${name}: forwarded`);
    const got = JSON.parse(res?.body.toString() ?? '{}') as Echo;
    const auth = got.headers.authorization;
    const list = auth === undefined ? [] : String(auth).split(', ');
    t.same(list, forwarded, `${name}: the backend sees only its own credentials`);
    t.notOk(res?.body.toString().includes(alice), `${name}: our token never reaches the backend`);
  }
});

t.test('two Authorization headers on a secure route are refused', async (t) => {
  const head =
    'GET /secure/x HTTP/1.1\r\nHost: x\r\n' +
    `Authorization: Bearer backend-own\r\nAuthorization: Bearer ${alice}\r\n\r\n`;
  const result = await rawExchange(gw.port, [head]);
  t.equal(result.responses[0]?.status, 400);
  t.equal(JSON.parse(result.responses[0]?.body.toString() ?? '{}').error, 'CREDENTIALS_AMBIGUOUS');
});

t.test('usernames and roles outside Latin-1 reach the backend percent-encoded', async (t) => {
  for (const [username, password, roles] of [
    [FULLWIDTH, 'wide-password', ['r\u00f4le', 'team a', 'x%y']],
    ['Ann Smith%', 'ann-password', []],
  ] as const) {
    const token = await login(gw.url, username, password);
    const got = await echo('/secure/who', { authorization: `Bearer ${token}` });
    const header = String(got.headers['x-user']);
    t.match(header, /^[\x21-\x7e]+$/, `${username}: printable ASCII on the wire`);
    t.equal(decodeURIComponent(header), username, `${username}: decodes back exactly`);
    const rolesHeader = String(got.headers['x-user-roles'] ?? '');
    t.same(
      rolesHeader === '' ? [] : rolesHeader.split(',').map(decodeURIComponent),
      roles,
      `${username}: roles decode back exactly`,
    );
  }
});

t.test('methods: bounded tokens; CONNECT and TRACE are not served', async (t) => {
  const long = 'A'.repeat(5000);
  for (const [method, status] of [
    [long, 501],
    ['X'.repeat(33), 501],
    ['TRACE', 501],
    ['CONNECT', 501],
  ] as const) {
    const result = await rawExchange(gw.port, [`${method} /public/x HTTP/1.1\r\nHost: x\r\n\r\n`]);
    t.equal(result.responses[0]?.status, status, `${method.slice(0, 20)}: ${status}`);
  }
  // The authority form of CONNECT never gets past uWS (it answers 505 itself).
  const tunnel = await rawExchange(gw.port, [
    'CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n',
  ]);
  t.ok((tunnel.responses[0]?.status ?? 0) >= 400, 'CONNECT host:port refused');
  t.notOk(methodsSeen.includes('TRACE'), 'TRACE never forwarded');
  t.notOk(methodsSeen.includes('CONNECT'), 'CONNECT never forwarded');
  t.notOk(
    methodsSeen.some((m) => m.length > 32),
    'no overlong method forwarded',
  );
  const ok = await rawExchange(gw.port, ['PROPFIND /public/x HTTP/1.1\r\nHost: x\r\n\r\n']);
  t.equal(ok.responses[0]?.status, 200, 'an extension method is forwarded');
  t.equal(JSON.parse(ok.responses[0]?.body.toString() ?? '{}').method, 'PROPFIND');
});

t.test(
  'header values reach the backend as the bytes the client sent, or are refused',
  async (t) => {
    const send = (raw: Buffer) =>
      rawExchange(gw.port, [
        Buffer.concat([
          Buffer.from('GET /public/bytes HTTP/1.1\r\nHost: x\r\nX-Value: '),
          raw,
          Buffer.from('\r\n\r\n'),
        ]),
      ]);
    // uWS drops bytes above 0x7f at the very start or end of a value (README, Known limits).
    for (const text of ['café!', '5 € net', 'x ａｌｉｃｅ!', 'plain']) {
      const result = await send(Buffer.from(text, 'utf8'));
      t.equal(result.responses[0]?.status, 200, `${text}: forwarded`);
      const echo = JSON.parse(result.responses[0]?.body.toString() ?? '{}') as Echo;
      // Node's server reads header bytes as latin1: back to bytes, they must be the UTF-8 sent.
      t.same(
        Buffer.from(String(echo.headers['x-value']), 'latin1'),
        Buffer.from(text, 'utf8'),
        `${text}: the same bytes`,
      );
    }
    for (const [name, raw] of [
      ['bytes that are not UTF-8', Buffer.from([0x61, 0xe9, 0x74, 0xe9, 0x62])],
      ['DEL', Buffer.from('a\x7fb')],
    ] as const) {
      const result = await send(raw);
      t.equal(result.responses[0]?.status, 400, `${name}: 400, not a 502 blamed on the upstream`);
      t.equal(JSON.parse(result.responses[0]?.body.toString() ?? '{}').error, 'BAD_REQUEST');
    }
  },
);
