import { readFile } from 'node:fs/promises';
import yaml from 'js-yaml';
import t from 'tap';
import { NOT_YET_SUPPORTED } from '../conf/not-yet-supported.js';
import { parseConfig } from '../conf/parse.js';
import { ROUTES_EXAMPLE_YML } from '../conf/routes-example.js';
import { routeSchema } from '../conf/routes-schema.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const CONFIG = { secret: 's'.repeat(64), users: [{ username: 'admin', password: 'p' }] };

/** Route keys of the not-yet-supported table (`routes[].filters` -> `filters`). */
const UNBUILT = NOT_YET_SUPPORTED.filter((r) => r.scope === 'route').map((r) =>
  r.key.slice('routes[].'.length),
);

/**
 * Working keys explained in comments only: they need an https target, files or a proxy that
 * the example route cannot assume.
 */
const EXPLAINED = ['ca', 'tls_verify', 'cert', 'proxy', 'proxy_config'];

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

t.test('the commented route is valid and shows every key that works, and only those', async (t) => {
  const raw = yaml.load(uncommented(ROUTES_EXAMPLE_YML), { schema: yaml.CORE_SCHEMA }) as {
    routes: Record<string, unknown>[];
  };
  const parsed = parseConfig(CONFIG, raw, FILES);
  t.equal(parsed.routes.length, 1);
  t.same(parsed.warnings, [], 'no key that has no effect');
  const shown = Object.keys(raw.routes[0] ?? {}).sort();
  const working = Object.keys(routeSchema.shape).filter(
    (k) => !UNBUILT.includes(k) && !EXPLAINED.includes(k),
  );
  t.same(shown, working.sort());
  for (const key of EXPLAINED) {
    t.match(ROUTES_EXAMPLE_YML, new RegExp(`^##   ${key}: `, 'm'), `${key} is explained`);
  }
  t.not(parsed.routes[0]?.prefix, '/', 'the example does not forward everything');
});

t.test('every unbuilt route key is listed under "Not supported yet"', async (t) => {
  const note = ROUTES_EXAMPLE_YML.slice(ROUTES_EXAMPLE_YML.indexOf('## Not supported yet'));
  t.ok(note.length > 0 && note.length < ROUTES_EXAMPLE_YML.length, 'the note exists');
  for (const key of UNBUILT) t.match(note, new RegExp(`\\b${key}\\b`), key);
  // Above the note, nothing may describe a feature that is not built.
  const body = ROUTES_EXAMPLE_YML.slice(0, ROUTES_EXAMPLE_YML.indexOf('## Not supported yet'));
  for (const word of UNBUILT) {
    t.notMatch(body, new RegExp(`\\b${word}\\b`, 'i'), `no ${word} above the note`);
  }
});
