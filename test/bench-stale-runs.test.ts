// The next run's sweep of dirs left by a bench whose runner and guard both died: it removes only
// its own kind of dir, and never follows a symlink out of the temp dir.
import { existsSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { procStat } from '../bench/proc-stat.js';
import { reapStaleRuns } from '../bench/stale-runs.js';

const self = procStat(process.pid)?.startTime;
// This process under another start time: a runner that died and whose pid was reused.
const deadOwner = `owner ${process.pid} ${(self ?? 0) + 1}\n`;
const liveOwner = `owner ${process.pid} ${self}\n`;

t.test('removes a run dir whose owner is gone, and only that', async (t) => {
  const root = t.testdir({
    'proxyauth-bench-dead01': { ledger: deadOwner, 'gateway.log': 'x' },
    'proxyauth-bench-alive1': { ledger: liveOwner },
    'proxyauth-bench-nolead': { 'gateway.log': 'x' },
    'proxyauth-bench-dead02-extra': { ledger: deadOwner },
    'other-dead03': { ledger: deadOwner },
  });
  const reaped = await reapStaleRuns(root, 100);
  t.same(
    reaped.map((r) => r.dir),
    [join(root, 'proxyauth-bench-dead01')],
  );
  t.same(readdirSync(root).sort(), [
    'other-dead03',
    'proxyauth-bench-alive1',
    'proxyauth-bench-dead02-extra',
    'proxyauth-bench-nolead',
  ]);
});

t.test('a symlink named as a run dir is left, and so is what it points to', async (t) => {
  const root = t.testdir({ tmp: {}, elsewhere: { ledger: deadOwner, keep: 'x' } });
  symlinkSync(join(root, 'elsewhere'), join(root, 'tmp', 'proxyauth-bench-link01'));
  t.same(await reapStaleRuns(join(root, 'tmp'), 100), []);
  t.ok(existsSync(join(root, 'elsewhere', 'keep')));
});

t.test('a ledger that is a symlink is not read', async (t) => {
  const root = t.testdir({ target: deadOwner, tmp: { 'proxyauth-bench-slink1': {} } });
  symlinkSync(join(root, 'target'), join(root, 'tmp', 'proxyauth-bench-slink1', 'ledger'));
  t.same(await reapStaleRuns(join(root, 'tmp'), 100), []);
});
