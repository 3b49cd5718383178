import t from 'tap';
import { isLoopback, metricsSchema } from '../conf/metrics-schema.js';
import { parseConfig } from '../conf/parse.js';

t.test('listen: an IP literal and a port; loopback unless allow_remote', async (t) => {
  t.same(metricsSchema.parse({ listen: '127.0.0.1:9464' }), {
    host: '127.0.0.1',
    port: 9464,
    allow_remote: false,
  });
  t.same(metricsSchema.parse({ listen: '[::1]:0' }), { host: '::1', port: 0, allow_remote: false });
  t.same(metricsSchema.parse({ listen: '10.0.0.5:9464', allow_remote: true }), {
    host: '10.0.0.5',
    port: 9464,
    allow_remote: true,
  });
  const refused = metricsSchema.safeParse({ listen: '0.0.0.0:9464' });
  t.notOk(refused.success);
  t.match(refused.error?.issues[0], {
    path: ['listen'],
    message: /not a loopback address.*allow_remote/,
  });
  for (const listen of [
    'localhost:9464',
    '127.0.0.1',
    '127.0.0.1:65536',
    ':9464',
    '[::1]',
    '1.2.3:80',
  ])
    t.notOk(metricsSchema.safeParse({ listen }).success, `${listen} refused`);
  t.notOk(metricsSchema.safeParse({ listen: '127.0.0.1:1', extra: 1 }).success, 'strict keys');
});

t.test('isLoopback', async (t) => {
  for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1']) t.ok(isLoopback(ip), ip);
  for (const ip of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'localhost'])
    t.notOk(isLoopback(ip), ip);
});

t.test('metrics.listen on the gateway own address and port is a config error', async (t) => {
  const files = { config: '/etc/p/config.json', routes: '/etc/p/routes.yml' };
  const parse = (config: Record<string, unknown>) => () =>
    parseConfig({ secret: 's'.repeat(64), users: [], ...config }, { routes: [] }, files);
  const clash = (host: string, listen: string, allow = false) =>
    parse({ host, port: 18403, metrics: { listen, allow_remote: allow } });
  for (const [host, listen, allow] of [
    ['0.0.0.0', '127.0.0.1:18403', false],
    ['127.0.0.1', '127.0.0.1:18403', false],
    ['::', '[::1]:18403', false],
    ['localhost', '127.0.0.1:18403', false],
    ['127.0.0.1', '[::ffff:127.0.0.1]:18403', false],
    ['10.0.0.1', '0.0.0.0:18403', true],
  ] as const) {
    let issues: unknown;
    try {
      clash(host, listen, allow)();
    } catch (err) {
      issues = (err as { issues?: unknown }).issues;
    }
    t.match(
      issues,
      [{ file: files.config, key: 'metrics.listen', message: /overlaps the gateway/ }],
      `${host} and ${listen}`,
    );
  }
  t.doesNotThrow(clash('10.0.0.1', '127.0.0.1:18403'), 'distinct addresses, same port');
  t.doesNotThrow(
    parse({ host: '0.0.0.0', port: 18403, metrics: { listen: '127.0.0.1:9464' } }),
    'another port',
  );
  t.doesNotThrow(
    parse({ host: '0.0.0.0', port: 0, metrics: { listen: '127.0.0.1:0' } }),
    'port 0 takes a free port',
  );
});
