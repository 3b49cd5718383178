import { PassThrough } from 'node:stream';
import t from 'tap';
import type * as PrepareCommand from '../supervisor/prepare-command.js';
import * as prepareDir from '../supervisor/prepare-dir.js';
import { PrepareError } from '../supervisor/prepare-error.js';
import * as account from '../supervisor/system-account.js';

// The checks that come before any lookup or change; the real runs are in cli-prepare.test.ts.
const dirs = { configDir: '/nonexistent/config', dataDir: '/nonexistent/data' };

function sink() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { out, text: () => text };
}

t.test('not root: refused before any lookup', async (t) => {
  let looked = false;
  const { prepareCommand } = await t.mockImport<typeof PrepareCommand>(
    '../supervisor/prepare-command.js',
    {
      '../supervisor/system-account.js': {
        ...account,
        lookupAccount: async () => {
          looked = true;
          throw new Error('not reached');
        },
      },
    },
  );
  const { out, text } = sink();
  await t.rejects(prepareCommand(dirs, 'proxyauth', { isRoot: false, out }), {
    constructor: PrepareError,
    code: 'PREPARE_NOT_ROOT',
  });
  t.notOk(looked);
  t.equal(text(), '');
});

t.test('a user of that name with uid 0 is refused: it would run the gateway as root', async (t) => {
  const made: string[] = [];
  const { prepareCommand } = await t.mockImport<typeof PrepareCommand>(
    '../supervisor/prepare-command.js',
    {
      '../supervisor/system-account.js': {
        ...account,
        lookupAccount: async (name: string) => ({ name, uid: 0, gid: 0, userGid: 0 }),
        createGroup: async () => made.push('group'),
        createUser: async () => made.push('user'),
        nologinShell: async () => '/usr/sbin/nologin',
      },
      '../supervisor/prepare-dir.js': {
        ...prepareDir,
        inspectDir: async () => {
          made.push('inspect');
          throw new Error('not reached');
        },
      },
    },
  );
  const { out, text } = sink();
  await t.rejects(prepareCommand(dirs, 'toor', { isRoot: true, out }), {
    code: 'PREPARE_USER_UNSAFE',
    message: 'user toor has uid 0: not a service user',
  });
  t.same(made, [], 'no dir looked at, nothing created');
  t.equal(text(), '');
});

t.test('config and data dir must be apart: one inside the other is refused first', async (t) => {
  let looked = false;
  const { prepareCommand } = await t.mockImport<typeof PrepareCommand>(
    '../supervisor/prepare-command.js',
    {
      '../supervisor/system-account.js': {
        ...account,
        lookupAccount: async () => {
          looked = true;
          throw new Error('not reached');
        },
      },
    },
  );
  const { out } = sink();
  const cases: [string, string][] = [
    ['/srv/pa', '/srv/pa'],
    ['/srv/pa', '/srv/pa/data'],
    ['/srv/pa/config', '/srv/pa'],
    ['/', '/var/lib/proxyauth'],
  ];
  for (const [configDir, dataDir] of cases) {
    await t.rejects(
      prepareCommand({ configDir, dataDir }, 'proxyauth', { isRoot: true, out }),
      { code: 'PREPARE_DIR_REFUSED', message: /must be apart/ },
      `${configDir} and ${dataDir}`,
    );
  }
  t.notOk(looked, 'refused before any lookup');
  // Siblings whose names share a prefix are apart.
  await t.rejects(
    prepareCommand({ configDir: '/srv/pa', dataDir: '/srv/pa-data' }, 'proxyauth', {
      isRoot: true,
      out,
    }),
    { message: 'not reached' },
  );
});
