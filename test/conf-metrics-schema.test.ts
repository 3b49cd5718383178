import t from 'tap';
import { isLoopback, metricsSchema } from '../conf/metrics-schema.js';

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
