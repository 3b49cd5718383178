import t, { type Test } from 'tap';
import { canonicalizePath } from '../worker/canonical-path.js';
import { compileRouteTable } from '../worker/route-table.js';
import { encodePathForUpstream } from '../worker/upstream-url.js';
import { cpuMs } from './helpers/cpu-time.js';
import { seededRandom } from './helpers/seeded-random.js';

type Cases = ReadonlyArray<readonly [string, string | null]>;

// Each raw path paired with what canonicalizePath makes of it, to compare with t.same.
function canonicalizeEach(cases: Cases): Cases {
  return cases.map(([raw]) => [raw, canonicalizePath(raw)] as const);
}

function check(t: Test, cases: Cases): void {
  t.same(canonicalizeEach(cases), cases);
}

t.test('already canonical paths come back unchanged', async (t) => {
  check(t, [
    ['/', '/'],
    ['/api', '/api'],
    ['/api/', '/api/'],
    ['/api/v1/users/42', '/api/v1/users/42'],
    ['/api_test/openapi.json', '/api_test/openapi.json'],
    ["/a-b_c~d!$&'()*+,=:@", "/a-b_c~d!$&'()*+,=:@"],
  ]);
});

t.test('traversal through dot segments, escapes and backslashes is resolved', async (t) => {
  check(t, [
    ['/api/../admin', '/admin'],
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['/api/%2e./admin', '/admin'],
    ['/api\\..\\admin', '/admin'],
    ['/api%2f..%2fadmin', '/admin'],
    ['/api%2F..%2Fadmin', '/admin'],
    ['/api%5c..%5cadmin', '/admin'],
    ['/api%5C..%5Cadmin', '/admin'],
    ['/api/x/../../admin', '/admin'],
    ['/api/./x', '/api/x'],
    ['/api/%2e/x', '/api/x'],
  ]);
});

t.test('empty segments collapse and backslash is a separator', async (t) => {
  check(t, [
    ['//api', '/api'],
    ['/\\api', '/api'],
    ['///api///x', '/api/x'],
    ['/api//', '/api/'],
    ['/api\\', '/api/'],
    ['/%2fapi', '/api'],
  ]);
});

t.test('the trailing slash is kept, and a final dot segment leaves one', async (t) => {
  check(t, [
    ['/api/', '/api/'],
    ['/api/.', '/api/'],
    ['/api/x/..', '/api/'],
    ['/api/x/%2e%2e', '/api/'],
    ['/api/x/', '/api/x/'],
    ['/./', '/'],
    ['/.', '/'],
    ['/a/..', '/'],
    ['/a/../', '/'],
  ]);
});

t.test('climbing above the root is null', async (t) => {
  check(t, [
    ['/..', null],
    ['/../', null],
    ['/a/../../b', null],
    ['/%2e%2e', null],
    ['/%2e%2e/etc/passwd', null],
    ['/a/..\\..', null],
  ]);
});

t.test('a path must start with a literal slash', async (t) => {
  check(t, [
    ['', null],
    ['api', null],
    ['\\api', null],
    ['%2Fapi', null],
    ['http://example.com/api', null],
    ['*', null],
  ]);
});

t.test('invalid escapes are null', async (t) => {
  check(t, [
    ['/%zz', null],
    ['/%4', null],
    ['/api%', null],
    ['/%%41', null],
    ['/%g0', null],
  ]);
});

t.test('control chars are null, raw or decoded', async (t) => {
  check(t, [
    ['/a%00b', null],
    ['/a%0ab', null],
    ['/a%0Db', null],
    ['/a%09b', null],
    ['/a%1fb', null],
    ['/a%7fb', null],
    ['/a\u0000b', null],
    ['/a\tb', null],
    ['/a\nb', null],
    ['/a\u007fb', null],
  ]);
});

t.test('invalid UTF-8 and lone surrogates are null', async (t) => {
  check(t, [
    ['/%c3%28', null],
    ['/%c3', null],
    ['/%e2%82', null],
    ['/%ff', null],
    ['/%c0%ae%c0%ae/x', null], // overlong '.', the classic IIS traversal
    ['/%ed%a0%80', null], // an encoded surrogate
    ['/a\ud800b', null],
    ['/a\udc00', null],
  ]);
});

t.test('valid UTF-8 is decoded, raw or escaped', async (t) => {
  check(t, [
    ['/caf%C3%A9', '/café'],
    ['/café', '/café'],
    ['/%F0%9F%98%80', '/😀'],
    ['/😀/x', '/😀/x'],
  ]);
});

t.test('decoding happens once: decoded specials stay literal', async (t) => {
  check(t, [
    ['/a%20b', '/a b'],
    ['/a%3Fb', '/a?b'],
    ['/a%23b', '/a#b'],
    ['/a%25b', '/a%b'],
    ['/a%25', '/a%'],
    ['/a%25zz', '/a%zz'],
    ['/api/%252e%252e/admin', null],
    ['/api/%252f', null],
    ['/a%252fb', null],
    ['/a%2541', null],
  ]);
});

t.test('segments that only look like dots are names', async (t) => {
  check(t, [
    ['/api.', '/api.'],
    ['/a/...', '/a/...'],
    ['/a/..b', '/a/..b'],
    ['/a/.b', '/a/.b'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/b.', '/a/b.'],
  ]);
});

t.test(
  'a path with ; parameters, raw or encoded, is refused (backends disagree on them)',
  async (t) => {
    for (const raw of [
      '/api/..;/admin',
      '/api/.;/x',
      '/api/%2e%2e;/admin',
      '/api/..;jsessionid=1/admin',
      '/api/.%2e;x/y',
      '/app/admin;/secret',
      '/app/admin;jsessionid=1',
      '/app/admin;',
      '/app;x/admin',
      '/;/app/admin',
      '/app/admin/;',
      '/app/admin%3B/secret',
      '/app/admin%3b',
      '/app/%3Badmin',
      '/app/admin%253B',
      '/app/admin%25253B',
      '/api/a;b/c',
      '/api/...;x',
      ';',
    ]) {
      t.equal(canonicalizePath(raw), null, raw);
    }
  },
);

t.test('matching stays case-sensitive: /API is its own path', async (t) => {
  t.equal(canonicalizePath('/API'), '/API');
  t.equal(canonicalizePath('/Api/%2E%2E/X'), '/X');
});

t.test('very long paths take linear time', async (t) => {
  const segments = 100_000;
  const deep = '/a'.repeat(segments);
  const climb = `${deep}${'/..'.repeat(segments)}`;
  const wide = `/${'x'.repeat(1_000_000)}`;
  const cases: Cases = [
    [`${deep}/.`, `${deep}/`],
    [climb, '/'],
    [`${climb}/..`, null],
    [`${'/a/..'.repeat(segments)}/end`, '/end'],
    ['/%61'.repeat(segments), deep],
    [`${wide}//`, `${wide}/`],
  ];
  let results: ReturnType<typeof canonicalizeEach> = [];
  const elapsed = cpuMs(() => {
    results = canonicalizeEach(cases);
  });
  t.ok(
    results.every(([, got], i) => got === cases[i]![1]),
    'all resolved correctly',
  );
  // Linear work takes tens of ms here; a quadratic pass over 100k segments takes minutes.
  t.ok(elapsed < 2000, `well under 2 s (${elapsed.toFixed(0)} ms of CPU)`);
});

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// A simple, obviously-correct model of the rules, to compare the optimised code against.
function modelCanonicalize(raw: string): string | null {
  if (!raw.startsWith('/')) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (LONE_SURROGATE.test(decoded) || /[\x00-\x1f\x7f]/.test(decoded)) return null;
  if (raw.includes('#') || /%[0-9a-f]{2}/i.test(decoded)) return null;
  const parts = decoded.replaceAll('\\', '/').split('/').slice(1);
  const out: string[] = [];
  for (const part of parts) {
    if (part.includes(';')) return null;
    if (part === '..') {
      if (out.pop() === undefined) return null;
    } else if (part !== '.' && part !== '') {
      out.push(part);
    }
  }
  const last = parts[parts.length - 1];
  const trailing = last === '' || last === '.' || last === '..';
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}

function randomPath(next: () => number, alphabet: string): string {
  const length = 1 + Math.floor(next() * 24);
  let path = '/';
  for (let i = 0; i < length; i++) path += alphabet[Math.floor(next() * alphabet.length)];
  return path;
}

t.test('property: canonical paths are canonical, stable and agree with the model', async (t) => {
  const next = seededRandom(0x5eed);
  const alphabet = '/.%2ef5c\\a;';
  let valid = 0;
  let invalid = 0;
  const failures: string[] = [];
  for (let i = 0; i < 50_000; i++) {
    const raw = randomPath(next, alphabet);
    const canonical = canonicalizePath(raw);
    if (canonical !== modelCanonicalize(raw)) failures.push(`model differs on ${raw}`);
    if (canonical === null) {
      invalid++;
      continue;
    }
    valid++;
    const segments = canonical.split('/').slice(1, canonical.endsWith('/') ? -1 : undefined);
    if (!canonical.startsWith('/')) failures.push(`no leading slash: ${raw}`);
    if (canonical.includes('//')) failures.push(`'//' left in ${raw}`);
    if (canonical.includes('\\')) failures.push(`'\\' left in ${raw}`);
    if (segments.some((s) => s === '.' || s === '..')) failures.push(`dot segment: ${raw}`);
    // A decoded '%' would be decoded again, so only escape-free results can be fed back as is;
    // every result must survive the round trip through the upstream encoding.
    if (!canonical.includes('%') && canonicalizePath(canonical) !== canonical) {
      failures.push(`not idempotent: ${raw}`);
    }
    if (canonicalizePath(encodePathForUpstream(canonical)) !== canonical) {
      failures.push(`upstream encoding does not round-trip: ${raw}`);
    }
  }
  t.same(failures.slice(0, 10), [], 'no property violations');
  t.ok(valid > 5_000, `enough valid inputs (${valid})`);
  t.ok(invalid > 1_000, `enough invalid inputs (${invalid})`);
});

t.test('property: what routes to /api starts with /api/ or is /api', async (t) => {
  const next = seededRandom(0xa91);
  const table = compileRouteTable([{ prefix: '/' }, { prefix: '/api' }]);
  const failures: string[] = [];
  let routedToApi = 0;
  let escaped = 0;
  for (let i = 0; i < 50_000; i++) {
    const raw = `/api${randomPath(next, '/.%2ef5c\\a').slice(next() < 0.5 ? 1 : 0)}`;
    const canonical = canonicalizePath(raw);
    if (canonical === null) continue;
    const match = table.match(canonical);
    if (match === null) {
      failures.push(`no match for ${raw}`);
    } else if (match.route.prefix === '/api') {
      routedToApi++;
      if (canonical !== '/api' && !canonical.startsWith('/api/')) failures.push(`leak: ${raw}`);
      if (`/api${match.rest}` !== canonical) failures.push(`rest lost chars: ${raw}`);
    } else {
      escaped++;
      if (canonical === '/api' || canonical.startsWith('/api/')) failures.push(`missed: ${raw}`);
    }
  }
  t.same(failures.slice(0, 10), [], 'no property violations');
  t.ok(routedToApi > 1_000, `some stay under /api (${routedToApi})`);
  t.ok(escaped > 1_000, `some climb out of /api (${escaped})`);
});
