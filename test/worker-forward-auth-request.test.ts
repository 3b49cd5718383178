import t from 'tap';
import { GatewayError } from '../shared/errors.js';
import { readOriginalRequest } from '../worker/forward-auth-request.js';

const flat = (pairs: [string, string][]) => pairs.flat();

function refusal(pairs: [string, string][]): { code: string; detail: string | undefined } {
  try {
    readOriginalRequest(flat(pairs));
  } catch (err) {
    if (err instanceof GatewayError) return { code: err.code, detail: err.detail };
    throw err;
  }
  throw new Error('not refused');
}

t.test("nginx's headers", async (t) => {
  const r = readOriginalRequest(
    flat([
      ['x-original-method', 'post'],
      ['x-original-uri', '/app/a?b=1&c'],
    ]),
  );
  t.same(r, {
    method: 'POST',
    url: '/app/a',
    query: 'b=1&c',
    host: undefined,
    proto: undefined,
    family: 'original',
  });
});

t.test("Traefik's and Caddy's headers", async (t) => {
  const r = readOriginalRequest(
    flat([
      ['x-forwarded-method', 'GET'],
      ['x-forwarded-uri', '/x'],
      ['x-forwarded-host', 'App.test:8443'],
      ['x-forwarded-proto', 'HTTPS'],
    ]),
  );
  t.same(r, {
    method: 'GET',
    url: '/x',
    query: '',
    host: 'App.test:8443',
    proto: 'https',
    family: 'forwarded',
  });
  const both = readOriginalRequest(
    flat([
      ['x-forwarded-method', 'get'],
      ['x-original-method', 'GET'],
      ['x-forwarded-uri', '/x'],
      ['x-original-uri', '/x'],
    ]),
  );
  t.equal(both.family, 'original', 'agreeing families: nginx semantics (never a 302)');
});

t.test('anything ambiguous or missing refuses', async (t) => {
  const base: [string, string][] = [
    ['x-original-method', 'GET'],
    ['x-original-uri', '/app'],
  ];
  const cases: [string, [string, string][], string][] = [
    ['no method', [['x-original-uri', '/a']], 'FORWARD_AUTH_BAD_REQUEST'],
    ['no uri', [['x-forwarded-method', 'GET']], 'FORWARD_AUTH_BAD_REQUEST'],
    ['repeated uri', [...base, ['x-original-uri', '/app']], 'FORWARD_AUTH_BAD_REQUEST'],
    [
      'repeated host',
      [...base, ['x-forwarded-host', 'a'], ['x-forwarded-host', 'a']],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    ['uris disagree', [...base, ['x-forwarded-uri', '/other']], 'FORWARD_AUTH_BAD_REQUEST'],
    ['methods disagree', [...base, ['x-forwarded-method', 'POST']], 'FORWARD_AUTH_BAD_REQUEST'],
    [
      'method list',
      [
        ['x-original-method', 'GET, POST'],
        ['x-original-uri', '/'],
      ],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'empty method',
      [
        ['x-original-method', ''],
        ['x-original-uri', '/'],
      ],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'absolute uri',
      [
        ['x-original-method', 'GET'],
        ['x-original-uri', 'https://a/'],
      ],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'asterisk',
      [
        ['x-original-method', 'OPTIONS'],
        ['x-original-uri', '*'],
      ],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'fragment',
      [
        ['x-original-method', 'GET'],
        ['x-original-uri', '/a#b'],
      ],
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    ['host list', [...base, ['x-forwarded-host', 'a.test,b.test']], 'FORWARD_AUTH_BAD_REQUEST'],
    ['host with a path', [...base, ['x-forwarded-host', 'a.test/x']], 'FORWARD_AUTH_BAD_REQUEST'],
    ['proto list', [...base, ['x-forwarded-proto', 'https,http']], 'FORWARD_AUTH_BAD_REQUEST'],
    [
      'CONNECT',
      [
        ['x-original-method', 'CONNECT'],
        ['x-original-uri', '/'],
      ],
      'METHOD_NOT_SUPPORTED',
    ],
    [
      'not a token',
      [
        ['x-original-method', 'G(T'],
        ['x-original-uri', '/'],
      ],
      'METHOD_NOT_SUPPORTED',
    ],
  ];
  for (const [name, pairs, code] of cases) t.equal(refusal(pairs).code, code, name);
});
