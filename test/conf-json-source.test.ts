import t from 'tap';
import { JsonSyntaxError, lineAndColumn, scanJson } from '../conf/json-source.js';

const VALID = [
  '{}',
  '[]',
  ' {"a" : [1, -2.5e+3, 0, 1E2, true, false, null, "x\\n\\u00e9\\/"] } ',
  '"just a string"',
  '0',
  '{"a": {"b": {"c": []}}, "a": 2}',
  '{"k\\"ey": "😀"}',
];
const INVALID = [
  '',
  '{',
  '{"a": 1,}',
  '[1, 2,]',
  '{"a" 1}',
  '{a: 1}',
  "{'a': 1}",
  '01',
  '1.',
  '.5',
  '+1',
  '-',
  'tru',
  'nul',
  '"unterminated',
  '"tab\there"',
  '"bad \\x escape"',
  '"\\u12"',
  '{} {}',
  '[1 2]',
  'NaN',
];

t.test('accepts exactly what JSON.parse accepts', async (t) => {
  for (const text of VALID) {
    t.doesNotThrow(() => JSON.parse(text), `JSON.parse accepts ${text}`);
    t.doesNotThrow(() => scanJson(text), `scanner accepts ${text}`);
  }
  for (const text of INVALID) {
    t.throws(() => JSON.parse(text), `JSON.parse rejects ${text}`);
    t.throws(() => scanJson(text), JsonSyntaxError, `scanner rejects ${text}`);
  }
});

t.test('spans: value positions by key path, every occurrence of a repeated key', async (t) => {
  const text = '{"users": [{"password": "a\\"b"}, {"password": 12}], "x": 1, "x": [true]}';
  const spans = scanJson(text);
  const slice = (key: string) => (spans.get(key) ?? []).map((s) => text.slice(s.start, s.end));
  t.same(slice('users[0].password'), ['"a\\"b"']);
  t.same(slice('users[1].password'), ['12']);
  t.same(slice('x'), ['1', '[true]']);
  t.same(slice('x[0]'), ['true']);
  t.same(slice('(root)'), [text]);
  t.equal(spans.get('users[1].password')?.[0]?.type, 'number');
  t.equal(spans.get('users')?.[0]?.type, 'array');
});

t.test('keys that are not identifiers are quoted in the path', async (t) => {
  const spans = scanJson('{"a b": {"c.d": 1}}');
  t.ok(spans.has('["a b"]["c.d"]'));
});

t.test('syntax errors say where', async (t) => {
  const error = t.throws(() => scanJson('{\n  "a": 1,\n  "b": ?\n}')) as JsonSyntaxError;
  t.equal(error.code, 'JSON_SYNTAX');
  t.equal(error.line, 3);
  t.equal(error.column, 8);
  t.same(lineAndColumn('ab\ncd', 4), { line: 2, column: 2 });
});

t.test('deep nesting is an error, not a stack overflow', async (t) => {
  t.throws(() => scanJson('['.repeat(100_000)), JsonSyntaxError);
});

t.test('a leading BOM is tolerated and offsets stay in the original text', async (t) => {
  const text = '\uFEFF{"a": "b"}';
  t.equal(text.slice(scanJson(text).get('a')?.[0]?.start), '"b"}');
});
