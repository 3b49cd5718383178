// The filter step's readings of a request (README "Filters"), and what it compiles per route.
import t, { type Test } from 'tap';
import { parseConfig } from '../conf/parse.js';
import { GatewayError } from '../shared/errors.js';
import { compileRoutePipeline } from '../worker/pipeline.js';
import { ROUTE_FEATURES } from '../worker/route-features.js';
import { bodyView, jsonFields, queryParams } from '../worker/steps/filters.js';

const SECRET = 'filters-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const FILES = { config: '/virtual/config.json', routes: '/virtual/routes.yml' };

function refusedWith(t: Test, fn: () => unknown, detail: RegExp, label: string): void {
  const err = t.throws(fn, label) as GatewayError;
  t.ok(err instanceof GatewayError, `${label}: a GatewayError`);
  t.equal(err.code, 'FILTER_DENIED', `${label}: FILTER_DENIED`);
  t.match(err.detail, detail, label);
}

t.test('query: split on &, decoded, + as a space, bare names empty', async (t) => {
  t.same(queryParams(''), []);
  t.same(queryParams('a=1&b=x%20y&c=x+y&d&&e='), [
    ['a', '1'],
    ['b', 'x y'],
    ['c', 'x y'],
    ['d', ''],
    ['e', ''],
  ]);
  t.same(queryParams('%76=%C3%A9&v=a=b'), [
    ['v', 'é'],
    ['v', 'a=b'],
  ]);
  refusedWith(t, () => queryParams('a=%E0%A4'), /percent-escape/, 'truncated UTF-8');
  refusedWith(t, () => queryParams('a=%zz'), /percent-escape/, 'not hex');
});

t.test('JSON fields: top level, values as strings, duplicates refused', async (t) => {
  const fields = jsonFields(
    '{"s":"x","n":5.0,"e":1e3,"t":true,"f":false,"z":null,"o":{"s":"in"},"a":[1,"b"]}',
  );
  t.same(Object.fromEntries(fields), {
    s: 'x',
    n: '5',
    e: '1000',
    t: 'true',
    f: 'false',
    z: 'null',
    o: '{"s":"in"}',
    a: '[1,"b"]',
  });
  t.same([...jsonFields('["s"]')], [], 'an array has no keys');
  t.same([...jsonFields('"s"')], [], 'a string has no keys');
  // Keys that look alike inside strings or nested objects are not duplicates.
  t.same(jsonFields('{"a":"\\"a\\":1,","b":{"a":2},"c":[{"a":3}]}').get('a'), '"a":1,');
  refusedWith(t, () => jsonFields('{"a":1,"a":2}'), /repeats a top-level key/, 'duplicate');
  refusedWith(t, () => jsonFields('{"a":1,"\\u0061":2}'), /repeats/, 'duplicate, escaped');
  refusedWith(t, () => jsonFields('{"a":'), /not JSON/, 'truncated');
  refusedWith(t, () => jsonFields("{'a':1}"), /not JSON/, 'not JSON');
});

t.test('body text: UTF-8 only, no byte-order mark, empty body has no keys', async (t) => {
  t.equal(bodyView(Buffer.from('héllo'), false).text, 'héllo');
  t.same([...(bodyView(Buffer.alloc(0), true).json ?? ['missing'])], []);
  refusedWith(t, () => bodyView(Buffer.from([0x61, 0xff]), false), /not UTF-8/, 'bad UTF-8');
  refusedWith(t, () => bodyView(Buffer.from('\ufeff{"a":1}'), true), /byte-order mark/, 'BOM');
});

t.test('steps: none without filters, no body step without body conditions', async (t) => {
  const route = (filters?: unknown) => ({
    prefix: '/r',
    target: 'http://127.0.0.1:1',
    secure: false,
    ...(filters === undefined ? {} : { filters }),
  });
  const { config, routes } = parseConfig(
    { secret: SECRET, users: [] },
    {
      routes: [
        route(),
        { ...route({ default_allow: true }), prefix: '/open' },
        { ...route({ allow: [{ field: 'method', pattern: '^GET$' }] }), prefix: '/head' },
        {
          ...route({ default_allow: true, deny: [{ field: 'body_raw', pattern: 'x' }] }),
          prefix: '/body',
        },
        {
          ...route({
            allow: [
              { field: 'method', pattern: '^POST$' },
              { field: 'body_json', key: 'k', pattern: 'v' },
            ],
          }),
          prefix: '/both',
        },
        { ...route({}), prefix: '/closed' },
      ],
    },
    FILES,
  );
  const counts = routes.map((r) => compileRoutePipeline(r, config, ROUTE_FEATURES).steps.length);
  // Routes sort longest prefix first; map by prefix.
  const byPrefix = Object.fromEntries(routes.map((r, i) => [r.prefix, counts[i]]));
  t.same(byPrefix, {
    '/r': 1,
    '/open': 1,
    '/head': 2,
    '/body': 2,
    '/both': 3,
    // default_allow false with an empty allow refuses everything at the head step.
    '/closed': 2,
  });
});
