import t from 'tap';
import { parseTarget } from '../shared/target-url.js';
import { canonicalizePath } from '../worker/canonical-path.js';
import { compileRouteTable } from '../worker/route-table.js';
import {
  buildUpstreamPath,
  encodePathForUpstream,
  type UpstreamPathOptions,
} from '../worker/upstream-url.js';

const DEFAULTS: UpstreamPathOptions = {
  targetPath: '/',
  targetQuery: '',
  rest: '',
  canonicalPath: '/',
  query: '',
  securePath: false,
  preservePrefix: false,
};

function build(opts: Partial<UpstreamPathOptions>): string {
  return buildUpstreamPath({ ...DEFAULTS, ...opts });
}

t.test('encodePathForUpstream leaves pchar and slash alone', async (t) => {
  const safe = "/AZaz09-._~!$&'()*+,;=:@/x/";
  t.equal(encodePathForUpstream(safe), safe);
  t.equal(encodePathForUpstream('/'), '/');
  t.equal(encodePathForUpstream(''), '');
});

t.test('encodePathForUpstream escapes everything else, % included', async (t) => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['/a b', '/a%20b'],
    ['/a?b', '/a%3Fb'],
    ['/a#b', '/a%23b'],
    ['/a%b', '/a%25b'],
    ['/%2e%2e/admin', '/%252e%252e/admin'],
    ['/a\\b', '/a%5Cb'],
    ['/"<>^`{|}', '/%22%3C%3E%5E%60%7B%7C%7D'],
    ['/[::1]', '/%5B::1%5D'],
    ['/\u0000\u001f\u007f', '/%00%1F%7F'],
    ['/café', '/caf%C3%A9'],
    ['/\u0080', '/%C2%80'],
    ['/\u07ff\u0800', '/%DF%BF%E0%A0%80'],
    ['/€', '/%E2%82%AC'],
    ['/😀', '/%F0%9F%98%80'],
    ['/a\ud800b', '/a%EF%BF%BDb'],
    ['/a\udc00', '/a%EF%BF%BD'],
    ['/x y/z w', '/x%20y/z%20w'],
  ];
  for (const [canonical, encoded] of cases) {
    t.equal(encodePathForUpstream(canonical), encoded, JSON.stringify(canonical));
  }
});

t.test('encodePathForUpstream agrees with encodeURIComponent outside pchar', async (t) => {
  // encodeURIComponent escapes a superset of what we do; decoding both must give the same text.
  const failures: string[] = [];
  for (let cp = 0; cp < 0x3000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const s = `/${String.fromCodePoint(cp)}`;
    const ours = encodePathForUpstream(s);
    if (decodeURIComponent(ours) !== s) failures.push(`U+${cp.toString(16)}`);
    if (/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/.test(ours)) failures.push(`raw char left: ${ours}`);
  }
  t.same(failures.slice(0, 10), []);
});

t.test('default mode joins target path and rest without doubling slashes', async (t) => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['/base', '/x', '/base/x'],
    ['/base/', '/x', '/base/x'],
    ['/', '/x', '/x'],
    ['', '/x', '/x'],
    ['/base', '', '/base'],
    ['/base/', '', '/base/'],
    ['/', '', '/'],
    ['', '', '/'],
    ['/base', '/', '/base/'],
    ['/base/', '/', '/base/'],
    ['/base', '/x/', '/base/x/'],
    ['/base', '/a b', '/base/a%20b'],
  ];
  for (const [targetPath, rest, expected] of cases) {
    t.equal(build({ targetPath, rest }), expected, `${targetPath} + ${rest}`);
  }
});

t.test('the target path is used verbatim, never re-encoded', async (t) => {
  const { path } = parseTarget('http://h/a%20b/c%2Fd');
  t.equal(path, '/a%20b/c%2Fd');
  t.equal(build({ targetPath: path, rest: '/x' }), '/a%20b/c%2Fd/x');
  t.equal(build({ targetPath: path, securePath: true }), '/a%20b/c%2Fd');
});

t.test('secure_path forwards to the target path alone, query kept', async (t) => {
  t.equal(
    build({ targetPath: '/api/endpoint', rest: '/other', securePath: true }),
    '/api/endpoint',
  );
  t.equal(build({ targetPath: '/api/endpoint', rest: '/../x', securePath: true }), '/api/endpoint');
  t.equal(build({ targetPath: '', rest: '/x', securePath: true }), '/');
  t.equal(
    build({ targetPath: '/api/endpoint', rest: '', query: 'param=123', securePath: true }),
    '/api/endpoint?param=123',
  );
  t.equal(
    build({
      targetPath: '/e',
      targetQuery: 'k=v',
      rest: '/x',
      query: 'a=1',
      securePath: true,
      preservePrefix: true,
    }),
    '/e?k=v&a=1',
    'secure_path wins over preserve_prefix',
  );
});

t.test('preserve_prefix appends the whole canonical path', async (t) => {
  const base = { rest: '/x', canonicalPath: '/api/x', preservePrefix: true };
  t.equal(build({ ...base, targetPath: '/' }), '/api/x');
  t.equal(build({ ...base, targetPath: '' }), '/api/x');
  t.equal(build({ ...base, targetPath: '/base' }), '/base/api/x');
  t.equal(build({ ...base, targetPath: '/base/' }), '/base/api/x');
  t.equal(build({ ...base, targetPath: '/b', canonicalPath: '/api/a b/' }), '/b/api/a%20b/');
  t.equal(build({ ...base, targetPath: '/b', canonicalPath: '/api/%2e' }), '/b/api/%252e');
});

t.test('the query is the target query, then the client query', async (t) => {
  t.equal(build({ targetPath: '/p', targetQuery: 'k=v', query: 'a=1' }), '/p?k=v&a=1');
  t.equal(build({ targetPath: '/p', targetQuery: '?k=v', query: 'a=1' }), '/p?k=v&a=1');
  t.equal(build({ targetPath: '/p', targetQuery: 'k=v' }), '/p?k=v');
});

t.test("a client cannot repeat the target's own query parameters", async (t) => {
  const own = 'tenant=1&key=s3cret';
  for (const [query, expected] of [
    ['tenant=2', ''],
    ['a=1&tenant=2&b=2', 'a=1&b=2'],
    ['tenant', ''],
    ['%74enant=2', ''],
    ['key=x&key=y', ''],
    ['tenant%20=2', 'tenant%20=2'],
    ['tenants=2', 'tenants=2'],
    ['a=1', 'a=1'],
    ['bad=%zz&tenant=3', 'bad=%zz'],
  ] as const) {
    t.equal(
      build({ targetPath: '/p', targetQuery: own, query }),
      expected === '' ? `/p?${own}` : `/p?${own}&${expected}`,
      query,
    );
  }
  t.equal(build({ targetPath: '/p', targetQuery: 'a+b=1', query: 'a%20b=2' }), '/p?a+b=1');
  t.equal(build({ targetPath: '/p', query: 'a=1&b=2' }), '/p?a=1&b=2');
  t.equal(build({ targetPath: '/p' }), '/p', 'no ? when both are empty');
  t.equal(build({ targetPath: '/p', targetQuery: '?' }), '/p');
});

t.test('the client query stays raw, except chars that cannot travel', async (t) => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['a=%2e%2e%2F', 'a=%2e%2e%2F'],
    ['a=%zz', 'a=%zz'],
    ['q={"a":[1]}|x^', 'q={"a":[1]}|x^'],
    ['a=1?b=/c', 'a=1?b=/c'],
    ['a=b c', 'a=b%20c'],
    ['a=b#c', 'a=b%23c'],
    ['a=\r\nX-Injected: 1', 'a=%0D%0AX-Injected:%201'],
    ['a=\u007f', 'a=%7F'],
    ['a=é', 'a=%C3%A9'],
  ];
  for (const [query, expected] of cases) {
    t.equal(build({ targetPath: '/p', query }), `/p?${expected}`, JSON.stringify(query));
  }
});

interface Route {
  prefix: string;
  target: string;
  secure_path?: boolean;
  preserve_prefix?: boolean;
}

// From the raw request to the upstream path, as the edge chains the three modules.
function forward(routes: readonly Route[], rawPath: string, query = ''): string | null {
  const canonicalPath = canonicalizePath(rawPath);
  if (canonicalPath === null) return null;
  const match = compileRouteTable(routes).match(canonicalPath);
  if (match === null) return null;
  const target = parseTarget(match.route.target);
  return buildUpstreamPath({
    targetPath: target.path,
    targetQuery: target.query,
    rest: match.rest,
    canonicalPath,
    query,
    securePath: match.route.secure_path ?? false,
    preservePrefix: match.route.preserve_prefix ?? false,
  });
}

t.test('end to end: traversal cannot leave the route or reach the backend', async (t) => {
  const routes: Route[] = [
    { prefix: '/api', target: 'http://b:8000/base' },
    { prefix: '/admin', target: 'http://b:8000/admin' },
  ];
  t.equal(forward(routes, '/api/x'), '/base/x');
  t.equal(forward(routes, '/api/../admin/users'), '/admin/users', 'routed as what it resolves to');
  t.equal(forward(routes, '/api/%2e%2e/admin'), '/admin');
  t.equal(forward(routes, '/api/%252e%252e/admin'), null, 'encoded twice: refused');
  t.equal(forward(routes, '/api/%252F..%252Fadmin'), null);
  t.equal(forward(routes, '/api/a%2fb'), '/base/a/b');
  t.equal(forward(routes, '/api/a%3Fb'), '/base/a%3Fb', "a decoded '?' stays in the path");
  t.equal(forward(routes, '/api/a%23b'), '/base/a%23b');
  t.equal(forward(routes, '/apix'), null);
  t.equal(forward(routes, '/API'), null);
  t.equal(forward(routes, '/api/../../etc/passwd'), null);
});

t.test("regression: the original's dropped trailing slash", async (t) => {
  const routes: Route[] = [{ prefix: '/app', target: 'http://b/app' }];
  t.equal(forward(routes, '/app/'), '/app/');
  t.equal(forward(routes, '/app/dir/'), '/app/dir/');
  t.equal(forward(routes, '/app'), '/app');
  t.equal(forward([{ prefix: '/app', target: 'http://b/app/' }], '/app'), '/app/');
});

t.test("regression: the original's broken URL for a target with '?'", async (t) => {
  const routes: Route[] = [{ prefix: '/p', target: 'http://b/p?k=v' }];
  t.equal(forward(routes, '/p', 'a=1'), '/p?k=v&a=1');
  t.equal(forward(routes, '/p/x/', 'a=1'), '/p/x/?k=v&a=1');
  t.equal(forward(routes, '/p'), '/p?k=v');
});

t.test('the documented secure_path and multi-segment prefix examples', async (t) => {
  const routes: Route[] = [
    { prefix: '/api/endpoint', target: 'http://localhost:8000/api/endpoint', secure_path: true },
    { prefix: '/api_test/openapi.json', target: 'http://localhost:8000/api_test/openapi.json' },
    { prefix: '/keep', target: 'http://localhost:8000/', preserve_prefix: true },
  ];
  t.equal(forward(routes, '/api/endpoint'), '/api/endpoint');
  t.equal(forward(routes, '/api/endpoint/other'), '/api/endpoint');
  t.equal(forward(routes, '/api/endpoint', 'param=123'), '/api/endpoint?param=123');
  t.equal(forward(routes, '/api_test/openapi.json', 'token=x'), '/api_test/openapi.json?token=x');
  t.equal(forward(routes, '/keep/a/'), '/keep/a/');
});
