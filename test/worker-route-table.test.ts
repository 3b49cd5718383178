import t from 'tap';
import { canonicalizePath } from '../worker/canonical-path.js';
import {
  compileRouteTable,
  normalizePrefix,
  type RouteTable,
  RouteTableError,
} from '../worker/route-table.js';
import { cpuMs } from './helpers/cpu-time.js';

interface Route {
  prefix: string;
  name: string;
}

const ROUTES: readonly Route[] = [
  { prefix: '/', name: 'root' },
  { prefix: '/api', name: 'api' },
  { prefix: '/api/v1', name: 'v1' },
  { prefix: '/api_test/openapi.json', name: 'openapi' },
];

// [path, route name or null, rest]
type Expectation = readonly [string, string | null, string?];

const EXPECTED: readonly Expectation[] = [
  ['/', 'root', '/'],
  ['/x', 'root', '/x'],
  ['/api', 'api', ''],
  ['/api/', 'api', '/'],
  ['/api/x', 'api', '/x'],
  ['/api/x/', 'api', '/x/'],
  ['/apix', 'root', '/apix'],
  ['/api.', 'root', '/api.'],
  ['/API', 'root', '/API'],
  ['/api/v1', 'v1', ''],
  ['/api/v1/', 'v1', '/'],
  ['/api/v1/users/42', 'v1', '/users/42'],
  ['/api/v10', 'api', '/v10'],
  ['/api/v', 'api', '/v'],
  ['/api/x/v1', 'api', '/x/v1'],
  ['/api_test/openapi.json', 'openapi', ''],
  ['/api_test/openapi.json/x', 'openapi', '/x'],
  ['/api_test/openapi.jsonx', 'root', '/api_test/openapi.jsonx'],
  ['/api_test', 'root', '/api_test'],
  ['/api_test/', 'root', '/api_test/'],
  ['/api_test/other', 'root', '/api_test/other'],
];

function names(table: RouteTable<Route>, path: string): [string | null, string | undefined] {
  const match = table.match(path);
  return match === null ? [null, undefined] : [match.route.name, match.rest];
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

t.test('segment-aware longest prefix, in every file order', async (t) => {
  const orders = permutations(ROUTES);
  t.equal(orders.length, 24);
  for (const order of orders) {
    const table = compileRouteTable(order);
    const got = EXPECTED.map(([path]) => [path, ...names(table, path)]);
    t.same(got, EXPECTED, order.map((r) => r.prefix).join(' '));
  }
});

t.test('without a root route, unmatched paths are null', async (t) => {
  const table = compileRouteTable(ROUTES.filter((r) => r.prefix !== '/'));
  t.equal(table.match('/'), null);
  t.equal(table.match('/apix'), null);
  t.equal(table.match('/API'), null);
  t.equal(table.match('/api_test'), null);
  t.same(names(table, '/api/x'), ['api', '/x']);
  t.equal(table.size, 3);
});

t.test('an empty table matches nothing', async (t) => {
  const table = compileRouteTable<Route>([]);
  t.equal(table.match('/'), null);
  t.equal(table.match('/api'), null);
  t.equal(table.size, 0);
});

t.test('a root-only table matches everything with the whole path as rest', async (t) => {
  const table = compileRouteTable([{ prefix: '/', name: 'root' }]);
  t.same(names(table, '/'), ['root', '/']);
  t.same(names(table, '/a/b/'), ['root', '/a/b/']);
  t.equal(table.size, 1);
});

t.test('the matched route is the caller object itself', async (t) => {
  const table = compileRouteTable(ROUTES);
  t.equal(table.match('/api/v1/x')?.route, ROUTES[2]);
});

t.test('prefixes are normalised like paths', async (t) => {
  t.equal(normalizePrefix('/'), '/');
  t.equal(normalizePrefix('/api/'), '/api');
  t.equal(normalizePrefix('//api//'), '/api');
  t.equal(normalizePrefix('/a/./b/../c'), '/a/c');
  t.equal(normalizePrefix('/a%20b'), '/a b');
  t.equal(normalizePrefix('/./'), '/');
  t.equal(normalizePrefix('api'), null);
  t.equal(normalizePrefix(''), null);
  t.equal(normalizePrefix('/..'), null);

  const table = compileRouteTable([
    { prefix: '/api/', name: 'api' },
    { prefix: '/docs%20v2', name: 'docs' },
    { prefix: '/x\\y', name: 'xy' },
  ]);
  t.same(names(table, '/api'), ['api', '']);
  t.same(names(table, '/api/x'), ['api', '/x']);
  t.same(names(table, canonicalizePath('/docs%20v2/a')!), ['docs', '/a']);
  t.same(names(table, '/x/y/z'), ['xy', '/z']);
});

t.test('a prefix that is not a path is a config error', async (t) => {
  for (const prefix of ['api', '', '/..', '/%zz', '/a%00']) {
    t.throws(
      () => compileRouteTable([{ prefix, name: 'bad' }]),
      { name: 'RouteTableError', code: 'ROUTE_PREFIX_INVALID', prefix },
      JSON.stringify(prefix),
    );
  }
});

t.test('two prefixes that normalise alike are a config error', async (t) => {
  const pairs = [
    ['/api', '/api/'],
    ['/api', '//api'],
    ['/', '/'],
    ['/', '/./'],
  ] as const;
  for (const [a, b] of pairs) {
    const error = t.throws(() =>
      compileRouteTable([
        { prefix: a, name: 'a' },
        { prefix: b, name: 'b' },
      ]),
    );
    t.ok(error instanceof RouteTableError, `${a} ${b}`);
    t.match(error, { code: 'ROUTE_PREFIX_DUPLICATE', prefix: b });
  }
});

t.test('a path that is not canonical-shaped does not match', async (t) => {
  const table = compileRouteTable(ROUTES);
  t.equal(table.match(''), null);
  t.equal(table.match('api'), null);
});

t.test('deep prefixes and very long paths', async (t) => {
  const deepPrefix = '/s'.repeat(50);
  const table = compileRouteTable([
    { prefix: '/', name: 'root' },
    { prefix: '/s', name: 's' },
    { prefix: deepPrefix, name: 'deep' },
  ]);
  const long = '/s'.repeat(10_000);
  const elapsed = cpuMs(() => {
    for (let i = 0; i < 1_000; i++) table.match(long);
  });
  // Cut points past the longest prefix are skipped at once: 1k matches of a 10k-segment path
  // take about a millisecond of CPU; a walk over every segment takes hundreds.
  t.ok(elapsed < 100, `cost does not grow with the path (${elapsed.toFixed(1)} ms of CPU)`);
  t.same(names(table, long), ['deep', long.slice(deepPrefix.length)]);
  t.same(names(table, `${deepPrefix}/`), ['deep', '/']);
  t.same(names(table, deepPrefix.slice(0, -2)), ['s', deepPrefix.slice(2, -2)]);
  t.same(names(table, `/x${long}`), ['root', `/x${long}`]);
});

// The straightforward definition, to compare the Map walk against.
function linearMatch(routes: readonly Route[], path: string): [string | null, string | undefined] {
  let best: Route | undefined;
  let bestLength = -1;
  for (const route of routes) {
    const prefix = normalizePrefix(route.prefix)!;
    const covers = prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
    const length = prefix === '/' ? 0 : prefix.length;
    if (covers && length > bestLength) {
      best = route;
      bestLength = length;
    }
  }
  if (best === undefined) return [null, undefined];
  return [best.name, path.slice(bestLength)];
}

t.test('property: agrees with a linear scan over all routes', async (t) => {
  const routes: Route[] = [
    { prefix: '/', name: 'root' },
    { prefix: '/a', name: 'a' },
    { prefix: '/a/b', name: 'a/b' },
    { prefix: '/ab', name: 'ab' },
    { prefix: '/b/a/b', name: 'b/a/b' },
    { prefix: '/a/b/a/b/a', name: 'a/b/a/b/a' },
  ];
  const table = compileRouteTable(routes);
  const withoutRoot = compileRouteTable(routes.slice(1));
  let seed = 7;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const failures: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    let path = '';
    const segments = 1 + Math.floor(next() * 7);
    for (let s = 0; s < segments; s++) path += `/${['a', 'b', 'ab', 'ba'][Math.floor(next() * 4)]}`;
    if (next() < 0.3) path += '/';
    const expected = linearMatch(routes, path);
    if (JSON.stringify(names(table, path)) !== JSON.stringify(expected)) failures.push(path);
    const expectedNoRoot = linearMatch(routes.slice(1), path);
    if (JSON.stringify(names(withoutRoot, path)) !== JSON.stringify(expectedNoRoot)) {
      failures.push(`(no root) ${path}`);
    }
  }
  t.same(failures.slice(0, 10), []);
});

t.test('prefixes differing only in case or trailing dots are duplicates', async (t) => {
  for (const [a, b] of [
    ['/api', '/API'],
    ['/api', '/Api/'],
    ['/admin', '/admin.'],
    ['/x/y', '/X/y..'],
  ] as const) {
    t.throws(
      () => compileRouteTable([{ prefix: a }, { prefix: b }]),
      {
        code: 'ROUTE_PREFIX_DUPLICATE',
      },
      `${a} ${b}`,
    );
  }
});

t.test('matchFolded: the route a lenient backend would reach', async (t) => {
  const table = compileRouteTable([{ prefix: '/' }, { prefix: '/app' }, { prefix: '/app/admin' }]);
  t.equal(table.matchFolded('/app/ADMIN/x')?.prefix, '/app/admin');
  t.equal(table.matchFolded('/app/admin./x')?.prefix, '/app/admin');
  t.equal(table.matchFolded('/APP/x')?.prefix, '/app');
  t.equal(table.matchFolded('/other')?.prefix, '/');
  t.equal(table.match('/app/ADMIN/x')?.route.prefix, '/app', 'the exact match differs');
});
