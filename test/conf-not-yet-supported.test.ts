import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { NOT_YET_SUPPORTED } from '../conf/not-yet-supported.js';
import { parseConfig } from '../conf/parse.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const USERS = [
  { username: 'admin', password: 'p' },
  { username: 'alice', password: 'p' },
];
const BASE = { secret: 's'.repeat(64), users: USERS };
const ROUTE = { prefix: '/api', target: 'http://127.0.0.1:8000/api' };

interface Case {
  /** Merged into config.json (scope config/user) or into the second route (scope route). */
  on: Record<string, unknown>;
  /** Key path the finding must name. */
  key: string;
  /** Explicit values that leave the setting off: no error, no warning. */
  off: Record<string, unknown>[];
}

// One case per row of the table; the test below fails when a row has no case or a case no row.
const CASES: Record<string, Case> = {
  csrf_token: {
    on: { csrf_token: false },
    key: 'csrf_token',
    off: [{ csrf_token: true }, { csrf_token: false, session_cookie: true }],
  },
  max_connections: {
    on: { max_connections: 500 },
    key: 'max_connections',
    off: [{ max_connections: 10_000 }],
  },
  pending_connections_limit: {
    on: { pending_connections_limit: 4096 },
    key: 'pending_connections_limit',
    off: [{ pending_connections_limit: 1024 }],
  },
  socket_listen: {
    on: { socket_listen: 128 },
    key: 'socket_listen',
    off: [{ socket_listen: 1024 }],
  },
};

function run(isRoute: boolean, extra: Record<string, unknown>) {
  if (!isRoute) return parseConfig({ ...BASE, ...extra }, { routes: [ROUTE] }, FILES);
  const routes = [ROUTE, { ...ROUTE, prefix: '/other', ...extra }];
  return parseConfig(BASE, { routes }, FILES);
}

function outcome(isRoute: boolean, extra: Record<string, unknown>) {
  try {
    return { errors: [], warnings: [...run(isRoute, extra).warnings] };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { errors: err.issues, warnings: [] };
  }
}

t.test('every row has a test case, and every case a row', async (t) => {
  t.same(NOT_YET_SUPPORTED.map((r) => r.key).sort(), Object.keys(CASES).sort());
  t.equal(new Set(NOT_YET_SUPPORTED.map((r) => r.key)).size, NOT_YET_SUPPORTED.length, 'unique');
});

t.test('messages say which kind they are', async (t) => {
  for (const row of NOT_YET_SUPPORTED) {
    const prefix = row.level === 'error' ? 'not supported yet: ' : 'has no effect';
    t.ok(row.message.startsWith(prefix), `${row.key}: ${row.message}`);
  }
});

for (const row of NOT_YET_SUPPORTED) {
  const c = CASES[row.key];
  if (c === undefined) continue;
  const isRoute = row.scope === 'route';
  const file = isRoute ? FILES.routes : FILES.config;

  t.test(`${row.key} on: ${row.level}`, async (t) => {
    const { errors, warnings } = outcome(isRoute, c.on);
    if (row.level === 'error') {
      t.same(
        errors.map((i) => [i.file, i.key, i.message]),
        [[file, c.key, row.message]],
        'refused, naming the file and key',
      );
    } else {
      t.same(errors, [], 'accepted');
      t.same(warnings, [`${file}: ${c.key}: ${row.message}`], 'one warning naming the key');
    }
  });

  t.test(`${row.key} off or default: no error, no warning`, async (t) => {
    for (const off of [{}, ...c.off]) {
      t.same(outcome(isRoute, off), { errors: [], warnings: [] }, JSON.stringify(off));
    }
  });
}

t.test('defaults and token_admin never warn', async (t) => {
  for (const token_admin of ['', null, 'ab'.repeat(32)]) {
    t.same(run(false, { token_admin }).warnings, [], `token_admin ${JSON.stringify(token_admin)}`);
  }
  t.same(parseConfig({ secret: 's'.repeat(64) }, null, FILES).warnings, []);
});

t.test('the browser-session keys are built: none is refused any more', async (t) => {
  t.same(
    NOT_YET_SUPPORTED.filter((r) => r.level === 'error').map((r) => r.key),
    [],
    'no security setting is accepted without being enforced, and none is refused',
  );
  const loaded = parseConfig(
    {
      ...BASE,
      cors_origins: ['https://app.test'],
      session_cookie: true,
      login_via_otp: true,
      users: [USERS[0], { ...USERS[1], totp: true }],
    },
    { routes: [ROUTE] },
    FILES,
  );
  t.same(loaded.warnings, []);
});
