import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import {
  type CorsPolicy,
  compileCors,
  corsHeadersFor,
  EXPOSED_HEADERS,
  NOT_LISTED,
  readCors,
} from '../worker/cors.js';
import { isUpstreamCorsHeader, varyWithOrigin } from '../worker/upstream-headers.js';
import type { HeaderPair } from '../worker/uws-io.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };

/** cors_origins as the config parser stores them, compiled as an edge compiles them. */
function policyOf(origins: string[]): CorsPolicy {
  const { config } = parseConfig({ secret: 's'.repeat(64), cors_origins: origins }, null, FILES);
  const policy = compileCors(config.cors_origins);
  if (policy === undefined) throw new Error('no policy');
  return policy;
}

const policy = policyOf([
  'https://app.test',
  'http://localhost:3000',
  'https://[::1]:8443',
  'HTTPS://Admin.Example.COM:443/',
]);

/** The Access-Control-Allow-Origin a request with this Origin value gets, or undefined. */
function allowed(origin: string): string | undefined {
  return corsHeadersFor(policy, origin).find(([k]) => k === 'access-control-allow-origin')?.[1];
}

t.test('no origin listed: CORS is off', async (t) => {
  t.equal(compileCors([]), undefined);
});

t.test(
  'listed origins match on scheme, host and port, as the URL standard reads them',
  async (t) => {
    const same: [string, string][] = [
      ['https://app.test', 'https://app.test'],
      ['https://APP.Test', 'https://app.test'],
      ['HTTPS://app.test', 'https://app.test'],
      ['https://app.test/', 'https://app.test'],
      ['https://app.test:443', 'https://app.test'],
      ['https://app.test:443/', 'https://app.test'],
      ['https://app.test:0443', 'https://app.test'],
      ['http://localhost:3000', 'http://localhost:3000'],
      ['https://[::1]:8443', 'https://[::1]:8443'],
      ['https://[0:0:0:0:0:0:0:1]:8443', 'https://[::1]:8443'],
      ['https://admin.example.com', 'https://admin.example.com'],
    ];
    for (const [origin, listed] of same) {
      t.equal(allowed(origin), listed, `${origin} is ${listed} (the listed form is sent back)`);
    }
  },
);

t.test('lookalikes, other schemes or ports, null and malformed values never match', async (t) => {
  const refused = [
    'null',
    'NULL',
    '',
    'https://app.test.evil.com',
    'https://evil.app.test',
    'https://evilapp.test',
    'https://app.tes',
    'https://app.testx',
    'https://app.test.',
    'https://app.test:8443',
    'https://app.test:80',
    'http://app.test',
    'http://app.test:443',
    'https://app.test:65979',
    'https://app.test:99999',
    'https://app.test:',
    'https://app.test//',
    'https://app.test/x',
    'https://app.test?',
    'https://app.test#',
    'https://user@app.test',
    'https://app.test@evil.com',
    'https://evil.com/https://app.test',
    'https://app.test, https://evil.com',
    'https://app.test https://evil.com',
    ' https://app.test',
    'https://app.test ',
    'https://app.test\t',
    'https:app.test',
    'https:/app.test',
    'https:\\\\app.test',
    'https://%61pp.test',
    'https://app%2etest',
    'https://\u0430pp.test',
    'ws://app.test',
    'wss://app.test',
    'file://',
    'http://localhost',
    'http://localhost:3001',
    'https://localhost:3000',
    'https://[::1]',
    'https://[::2]:8443',
    'https://127.0.0.1:8443',
  ];
  for (const origin of refused) {
    t.same(corsHeadersFor(policy, origin), NOT_LISTED, JSON.stringify(origin));
  }
});

t.test('the config refuses null and anything that is not an origin', async (t) => {
  for (const bad of ['null', '*', 'https://a.test/path', 'file:///x', 'https://*.a.test']) {
    t.throws(() => policyOf([bad]), { name: 'ConfigError' }, bad);
  }
});

t.test(
  'request origins in another spelling meet the listed ones in one canonical form',
  async (t) => {
    const listed = policyOf(['http://127.0.0.1:8080', 'https://xn--bcher-kva.test']);
    for (const spelling of [
      'HTTP://127.0.0.1:8080/',
      'http://0x7f.1:8080',
      'http://2130706433:8080',
    ]) {
      t.equal(
        corsHeadersFor(listed, spelling)[0]?.[1],
        'http://127.0.0.1:8080',
        `${spelling}: the listed form is sent back`,
      );
    }
    t.equal(
      corsHeadersFor(listed, 'https://xn--bcher-kva.test')[0]?.[1],
      'https://xn--bcher-kva.test',
    );
    t.same(corsHeadersFor(listed, 'https://bücher.test'), NOT_LISTED, 'browsers send punycode');
    for (const other of [
      'http://127.0.0.1:8081',
      'https://127.0.0.1:8080',
      'http://127.0.0.2:8080',
    ]) {
      t.same(corsHeadersFor(listed, other), NOT_LISTED, other);
    }
  },
);

t.test(
  'a listed origin gets credentials and the exposed headers; the lists are shared',
  async (t) => {
    const headers = corsHeadersFor(policy, 'https://app.test');
    t.same(headers, [
      ['access-control-allow-origin', 'https://app.test'],
      ['access-control-allow-credentials', 'true'],
      ['access-control-expose-headers', EXPOSED_HEADERS],
    ]);
    t.equal(corsHeadersFor(policy, 'https://APP.test/'), headers, 'compiled once per origin');
    t.ok(Object.isFrozen(headers) && Object.isFrozen(NOT_LISTED));
    t.match(EXPOSED_HEADERS, /Retry-After/);
  },
);

interface FakeExchange {
  headers: string[];
  method: string;
  cors: readonly HeaderPair[] | undefined;
}

function exchange(method: string, headers: string[]): FakeExchange {
  return { method, headers, cors: undefined };
}

t.test('readCors: plain requests, preflights, and several Origin headers', async (t) => {
  const none = exchange('GET', ['host', 'gw']);
  t.equal(readCors(none, policy), 'plain');
  t.equal(none.cors, NOT_LISTED, 'no Origin: Vary only');

  const get = exchange('GET', ['origin', 'https://app.test']);
  t.equal(readCors(get, policy), 'plain');
  t.equal(get.cors, corsHeadersFor(policy, 'https://app.test'));

  const pre = ['origin', 'https://app.test', 'access-control-request-method', 'PUT'];
  t.equal(readCors(exchange('OPTIONS', pre), policy), 'preflight');
  const refusedPre = exchange('OPTIONS', ['origin', 'https://evil.test', ...pre.slice(2)]);
  t.equal(readCors(refusedPre, policy), 'preflight', 'a preflight whatever its origin');
  t.equal(refusedPre.cors, NOT_LISTED);
  t.equal(readCors(exchange('OPTIONS', pre.slice(0, 2)), policy), 'plain', 'OPTIONS alone');
  t.equal(readCors(exchange('OPTIONS', pre.slice(2)), policy), 'plain', 'without Origin');
  t.equal(readCors(exchange('POST', pre), policy), 'plain', 'another method');

  for (const second of ['https://app.test', 'https://evil.test']) {
    const two = exchange('GET', ['origin', 'https://app.test', 'x', 'y', 'origin', second]);
    t.equal(readCors(two, policy), 'ambiguous', `second Origin ${second}`);
    t.equal(two.cors, NOT_LISTED, 'nothing is reflected');
  }
});

t.test('varyWithOrigin merges Origin into an upstream Vary once', async (t) => {
  t.equal(varyWithOrigin(undefined), 'Origin');
  t.equal(varyWithOrigin(''), 'Origin');
  t.equal(varyWithOrigin(' , '), 'Origin');
  t.equal(varyWithOrigin('Accept-Encoding'), 'Accept-Encoding, Origin');
  t.equal(varyWithOrigin(['Accept-Encoding', 'Cookie']), 'Accept-Encoding, Cookie, Origin');
  t.equal(varyWithOrigin('accept, origin'), 'accept, origin', 'already there, any case');
  t.equal(varyWithOrigin(['Accept', 'ORIGIN']), 'Accept, ORIGIN');
  t.equal(varyWithOrigin('*'), '*', '* already varies on everything');
  t.equal(varyWithOrigin('Origins'), 'Origins, Origin', 'whole names only');
});

t.test('upstream CORS headers the gateway replaces', async (t) => {
  for (const name of [
    'access-control-allow-origin',
    'access-control-allow-credentials',
    'access-control-allow-methods',
    'access-control-allow-headers',
    'access-control-max-age',
    'access-control-allow-private-network',
  ]) {
    t.ok(isUpstreamCorsHeader(name), name);
  }
  t.notOk(isUpstreamCorsHeader('access-control-expose-headers'), "the backend's own list");
  t.notOk(isUpstreamCorsHeader('vary'));
  t.notOk(isUpstreamCorsHeader('x-access-control-allow-origin'));
});
