import t from 'tap';

t.test('json lines, levels, and the tap sees every written line', async (t) => {
  const writes: string[] = [];
  const mod = await t.mockImport<typeof import('../shared/log.js')>('../shared/log.js', {
    'node:fs': { writeSync: (_fd: number, text: string) => writes.push(text) },
  });
  const tapped: string[] = [];
  mod.tapLogLines((l) => tapped.push(l));
  mod.setLogLevel('info');
  const log = mod.createLogger('unit');
  log.debug('hidden');
  log.info('shown', { n: 1 });
  t.equal(writes.length, 1);
  const line = JSON.parse(writes[0]!) as Record<string, unknown>;
  t.match(line, { level: 'info', message: 'shown', component: 'unit', n: 1 });
  t.same(tapped, [writes[0]!.trimEnd()]);
  mod.setLogLevel('debug');
  t.equal(mod.logLevel(), 'debug');
  log.debug('now shown');
  t.equal(writes.length, 2);
});

t.test('text lines: time LEVEL component message key=value, quoted when needed', async (t) => {
  const writes: string[] = [];
  const mod = await t.mockImport<typeof import('../shared/log.js')>('../shared/log.js', {
    'node:fs': { writeSync: (_fd: number, text: string) => writes.push(text) },
  });
  mod.setLogFormat('text');
  t.equal(mod.logFormat(), 'text');
  mod
    .createLogger('sup')
    .warn('edge exited', { code: 1, reason: 'out of memory', none: undefined });
  t.match(
    writes[0],
    /^\d{4}-\d\d-\d\dT[0-9:.]+Z WARN {2}sup edge exited pid=\d+ code=1 reason="out of memory"\n$/,
  );
});
