import { readFile } from 'node:fs/promises';
import yaml from 'js-yaml';
import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import { ROUTES_EXAMPLE_YML } from '../conf/routes-example.js';
import { routeSchema } from '../conf/routes-schema.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const CONFIG = { secret: 's'.repeat(64), users: [{ username: 'admin', password: 'p' }] };

/** The example with its commented route switched on, as its header tells the reader to do. */
function uncommented(text: string): string {
  return text
    .split('\n')
    .map((line) => (line.startsWith('# ') ? line.slice(1) : line))
    .join('\n')
    .replace(/^routes: \[\]$/m, 'routes:');
}

t.test('conf/routes.example.yml is the text first start writes', async (t) => {
  const file = await readFile(new URL('../conf/routes.example.yml', import.meta.url), 'utf8');
  t.equal(file, ROUTES_EXAMPLE_YML);
});

t.test('as shipped, the example forwards nothing', async (t) => {
  const raw = yaml.load(ROUTES_EXAMPLE_YML, { schema: yaml.CORE_SCHEMA });
  const parsed = parseConfig(CONFIG, raw, FILES);
  t.same(parsed.routes, []);
  t.same(parsed.warnings, []);
});

t.test('the commented route is valid and shows every route key', async (t) => {
  const raw = yaml.load(uncommented(ROUTES_EXAMPLE_YML), { schema: yaml.CORE_SCHEMA }) as {
    routes: Record<string, unknown>[];
  };
  const parsed = parseConfig(CONFIG, raw, FILES);
  t.equal(parsed.routes.length, 1);
  t.same(parsed.warnings, []);
  const shown = Object.keys(raw.routes[0] ?? {}).sort();
  t.same(shown, Object.keys(routeSchema.shape).sort());
  const filters = parsed.routes[0]?.filters?.allow.map((f) => f.field);
  t.same(filters, ['method', 'path', 'header', 'query', 'body_json']);
  t.not(parsed.routes[0]?.prefix, '/', 'the example does not forward everything');
});
