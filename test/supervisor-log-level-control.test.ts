import t from 'tap';
import type { LogLevel } from '../shared/log.js';
import { LogLevelControl } from '../supervisor/log-level-control.js';

function control(configured: LogLevel, env: Record<string, string> = {}) {
  const notified: LogLevel[] = [];
  const logged: string[] = [];
  const log = {
    debug: () => {},
    info: () => {},
    warn: (msg: string, f?: Record<string, unknown>) => logged.push(`${msg} ${JSON.stringify(f)}`),
    error: () => {},
  };
  const c = new LogLevelControl(configured, log, (l) => notified.push(l), env);
  return { c, notified, logged };
}

t.test('SIGUSR1 toggles debug and back; every change is logged and sent', async (t) => {
  const { c, notified, logged } = control('warn');
  t.equal(c.level, 'warn');
  c.toggle();
  t.equal(c.level, 'debug');
  c.toggle();
  t.equal(c.level, 'warn');
  t.same(notified, ['debug', 'warn']);
  t.match(logged[0], /log level changed .*"from":"warn","to":"debug","cause":"SIGUSR1"/);
});

t.test('a reload applies a new log.level, and ends a toggle', async (t) => {
  const { c, notified, logged } = control('info');
  c.configure('info');
  t.same(notified, [], 'unchanged: nothing sent');
  c.toggle();
  c.configure('error');
  t.equal(c.level, 'error');
  t.same(notified, ['debug', 'error']);
  t.match(logged[1], /"cause":"reload"/);
  c.toggle();
  c.toggle();
  t.equal(c.level, 'error', 'the toggle goes back to the configured level');
});

t.test('PROXYAUTH_LOG_LEVEL overrides log.level, reloads included', async (t) => {
  const { c, notified } = control('info', { PROXYAUTH_LOG_LEVEL: 'error' });
  t.equal(c.level, 'error');
  c.configure('debug');
  t.equal(c.level, 'error');
  t.same(notified, []);
  const bad = control('warn', { PROXYAUTH_LOG_LEVEL: 'loud' });
  t.equal(bad.c.level, 'warn', 'an invalid override is ignored');
});
