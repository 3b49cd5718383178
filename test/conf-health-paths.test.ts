// health_on_main_port against routes.yml: a route named after a health path is refused, a root
// route is warned, and nothing changes while the option is off.
import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { parseConfig } from '../conf/parse.js';

const FILES = { config: '/etc/proxyauth/config.json', routes: '/etc/proxyauth/routes.yml' };
const SECRET = 'health-paths-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';

const parse = (config: Record<string, unknown>, prefixes: string[]) =>
  parseConfig(
    { secret: SECRET, ...config },
    { routes: prefixes.map((prefix) => ({ prefix, target: 'http://127.0.0.1:9000' })) },
    FILES,
  );

t.test('off by default: every prefix is allowed, no warning', async (t) => {
  const parsed = parse({}, ['/healthz', '/readyz', '/']);
  t.equal(parsed.config.health_on_main_port, false);
  t.notMatch(parsed.warnings.join('\n'), /health/);
});

t.test('on: a route whose prefix is a health path is an error naming it', async (t) => {
  for (const prefix of ['/healthz', '/readyz', '/readyz/', '/HealthZ', '/healthz.']) {
    const err = t.throws(() =>
      parse({ health_on_main_port: true }, ['/api', prefix]),
    ) as ConfigError;
    t.ok(err instanceof ConfigError, prefix);
    t.equal(err.issues.length, 1);
    t.equal(err.issues[0]?.file, FILES.routes);
    t.equal(err.issues[0]?.key, 'routes[1].prefix', `${prefix}: the route is named`);
    t.match(err.issues[0]?.message, /health_on_main_port/);
  }
});

t.test('on: a root route is warned, other prefixes pass quietly', async (t) => {
  const parsed = parse({ health_on_main_port: true }, ['/', '/api', '/healthz-ui', '/health']);
  const health = parsed.warnings.filter((w) => w.includes('health_on_main_port'));
  t.same(health, [
    `${FILES.routes}: routes[0].prefix: / does not receive /healthz and /readyz: the gateway answers them itself (health_on_main_port)`,
  ]);
});

t.test('the key is a boolean', async (t) => {
  const err = t.throws(() => parse({ health_on_main_port: 'yes' }, [])) as ConfigError;
  t.equal(err.issues[0]?.key, 'health_on_main_port');
});
