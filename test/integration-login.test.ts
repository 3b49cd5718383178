import { connect, type Socket } from 'node:net';
import t from 'tap';
import { login, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const gw: RunningGateway = await startGateway({
  users: [
    { username: 'alice', password: 'alice-password', roles: ['read', 'write'] },
    { username: 'remote', password: 'remote-password', allow: ['10.0.0.0/8', '2001:db8::/32'] },
    { username: 'local', password: 'local-password', allow: ['127.0.0.0/8', '::1'] },
  ],
  config: {
    timezone: 'Asia/Kolkata',
    token_expiry_seconds: 600,
    max_body_auth_bytes: 1024,
    // These tests fail many logins on purpose; lockouts: integration-login-lockout.test.ts.
    login_lockout: { max_failures: 0 },
  },
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

function auth(body: string, contentType = 'application/json'): Promise<Response> {
  return fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
}

t.test('JSON login returns a token and expires_at in the configured timezone', async (t) => {
  const before = Date.now();
  const res = await auth(JSON.stringify({ username: 'alice', password: 'alice-password' }));
  t.equal(res.status, 200);
  t.equal(res.headers.get('server'), 'ProxyAuth');
  t.equal(res.headers.get('cache-control'), 'no-store');
  const body = (await res.json()) as { token: string; expires_at: string };
  t.match(body.token, /^[A-Za-z0-9_-]+$/);
  t.match(body.expires_at, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+05:30$/);
  const expires = Date.parse(body.expires_at.replace(' ', 'T').replace(' ', ''));
  t.ok(Math.abs(expires - (before + 600_000)) < 5_000, 'expiry is now + token_expiry_seconds');
  const again = await login(gw.url);
  t.not(again, body.token, 'every login gets a new token');
});

t.test('form login works too, and its token opens secure routes', async (t) => {
  const res = await auth(
    'username=alice&password=alice-password',
    'application/x-www-form-urlencoded; charset=utf-8',
  );
  t.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  const api = await fetch(`${gw.url}/api/form`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(api.status, 200, 'the token is accepted');
  const echo = (await api.json()) as { headers: Record<string, string> };
  t.equal(echo.headers['x-user'], 'alice', 'as the user who logged in');
});

t.test('wrong password and unknown user get the same 401 body', async (t) => {
  const wrong = await auth(JSON.stringify({ username: 'alice', password: 'nope' }));
  const unknown = await auth(JSON.stringify({ username: 'mallory', password: 'nope' }));
  t.equal(wrong.status, 401);
  t.equal(unknown.status, 401);
  const a = await wrong.text();
  t.equal(a, await unknown.text());
  t.equal(JSON.parse(a).error, 'INVALID_CREDENTIALS');
});

t.test('unknown users cost an Argon2 verification too (timing)', async (t) => {
  const time = async (username: string) => {
    const start = performance.now();
    await (await auth(JSON.stringify({ username, password: 'wrong-password' }))).text();
    return performance.now() - start;
  };
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 9; i++) {
    known.push(await time('alice'));
    unknown.push(await time(`ghost-${i}`));
  }
  // The fastest of 9 interleaved tries: a busy machine only ever adds time to a try, so the
  // minimum is what the request costs when it gets the CPU, and it is the same statistic for
  // both sides whatever else runs.
  const k = Math.min(...known);
  const u = Math.min(...unknown);
  t.comment(`fastest ms: known ${k.toFixed(1)}, unknown ${u.toFixed(1)}`);
  // Without the dummy hash an unknown user answers in ~1 ms against ~20-30 ms for a known one:
  // a factor of 20, far outside these bounds.
  t.ok(
    u > k * 0.5 && u < k * 2,
    `unknown-user timing (${u.toFixed(1)} ms) matches known-user timing (${k.toFixed(1)} ms)`,
  );
});

t.test('IP allow lists: 403 outside, 200 inside, 401 before the password is right', async (t) => {
  const outside = await auth(JSON.stringify({ username: 'remote', password: 'remote-password' }));
  t.equal(outside.status, 403);
  t.equal(((await outside.json()) as { error: string }).error, 'IP_NOT_ALLOWED');
  const wrong = await auth(JSON.stringify({ username: 'remote', password: 'bad' }));
  t.equal(wrong.status, 401, 'a wrong password does not reveal the allow list');
  const inside = await auth(JSON.stringify({ username: 'local', password: 'local-password' }));
  t.equal(inside.status, 200);
});

t.test('malformed bodies get 400, 413 and 415 with stable codes', async (t) => {
  const cases: [string, string, number, string][] = [
    ['{"username": "alice", ', 'application/json', 400, 'BAD_BODY'],
    ['["alice", "pw"]', 'application/json', 400, 'BAD_BODY'],
    ['{"username": "alice"}', 'application/json', 400, 'BAD_BODY'],
    ['{"username": 1, "password": "x"}', 'application/json', 400, 'BAD_BODY'],
    ['username=alice', 'application/x-www-form-urlencoded', 400, 'BAD_BODY'],
    ['username=alice&password=x', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [
      JSON.stringify({ username: 'alice', password: 'x'.repeat(2000) }),
      'application/json',
      413,
      'BODY_TOO_LARGE',
    ],
  ];
  for (const [body, type, status, code] of cases) {
    const res = await auth(body, type);
    t.equal(res.status, status, `${type} ${body.slice(0, 30)}`);
    t.equal(((await res.json()) as { error: string }).error, code);
  }
  const messages = await Promise.all(
    ['{"username": "alice", ', '{"username": "alice"}'].map(async (body) => {
      const res = await auth(body);
      return ((await res.json()) as { message: string }).message;
    }),
  );
  t.match(messages[0], /not valid JSON/, 'the 400 says what is wrong');
  t.match(messages[1], /password must be a non-empty string/);
  t.notMatch(messages[0], /alice/, 'without echoing the input');
});

/** What came back on one raw connection, and whether the server ended it (FIN) or it broke. */
interface RawExchange {
  data: string;
  ended: boolean;
  error: string | undefined;
}

/** Opens a connection, lets `send` write to it, and resolves when the connection is gone. */
function rawExchange(send: (socket: Socket) => void): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1', () => send(socket));
    const result: RawExchange = { data: '', ended: false, error: undefined };
    socket.on('data', (d: Buffer) => {
      result.data += d.toString('latin1');
    });
    socket.on('end', () => {
      result.ended = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      result.error = err.code;
    });
    socket.on('close', () => resolve(result));
  });
}

/** The HTTP responses in `data`: status and JSON error code of each (bodies are sized). */
function responses(data: string): { status: number; error: string; close: boolean }[] {
  const out: { status: number; error: string; close: boolean }[] = [];
  let rest = data;
  while (rest.length > 0) {
    const split = rest.indexOf('\r\n\r\n');
    const head = rest.slice(0, split);
    const length = Number(/^content-length: (\d+)$/im.exec(head)?.[1]);
    const body = rest.slice(split + 4, split + 4 + length);
    out.push({
      status: Number(head.slice(9, 12)),
      error: (JSON.parse(body) as { error: string }).error,
      close: /^connection: close$/im.test(head),
    });
    rest = rest.slice(split + 4 + length);
  }
  return out;
}

const AUTH_HEAD = 'POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';

t.test(
  '413 for a declared length over the limit: at once, then the connection closes',
  async (t) => {
    // Only the head is sent: the answer must not wait for a body it will never read.
    const res = await rawExchange((socket) =>
      socket.write(`${AUTH_HEAD}Content-Length: 2000\r\n\r\n`),
    );
    t.same(responses(res.data), [{ status: 413, error: 'BODY_TOO_LARGE', close: true }]);
    t.ok(res.ended, 'the gateway closed the connection (the unread body cannot be skipped)');
  },
);

t.test(
  '413 for a chunked body over the limit: after the body, on a usable connection',
  async (t) => {
    // 64 KiB against max_body_auth_bytes 1024: within the 1 MiB that is read and discarded so
    // that a client sending its whole body first still reads the answer. The body was consumed,
    // so the connection goes on: the pipelined request behind it gets its own answer.
    const res = await rawExchange((socket) => {
      socket.write(`${AUTH_HEAD}Transfer-Encoding: chunked\r\n\r\n`);
      for (let i = 0; i < 64; i++) socket.write(`400\r\n${'x'.repeat(1024)}\r\n`);
      socket.write('0\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    const answers = responses(res.data);
    t.equal(answers.length, 2, 'two answers on one connection');
    t.match(answers, [
      { status: 413, error: 'BODY_TOO_LARGE', close: false },
      { status: 404, error: 'NO_ROUTE' },
    ]);
  },
);

t.test(
  'a chunked body more than 1 MiB over the limit: 413, the rest read and dropped, closed',
  async (t) => {
    // 16 MiB offered with backpressure: the gateway refuses after limit + 1 MiB, reads and drops
    // the rest (lingering close, uws-io.ts: a close with unread bytes would reset the connection
    // and could take the 413 with it), then sends the 413 and closes.
    const chunk = `10000\r\n${'x'.repeat(0x10000)}\r\n`;
    let sent = 0;
    const res = await rawExchange((socket) => {
      socket.write(`${AUTH_HEAD}Transfer-Encoding: chunked\r\n\r\n`);
      const pump = () => {
        while (sent < 256 && !socket.destroyed) {
          sent++;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        if (!socket.destroyed) socket.end('0\r\n\r\n');
      };
      pump();
    });
    t.equal(res.error, undefined, 'no reset');
    t.ok(res.ended, 'closed (FIN)');
    t.same(
      responses(res.data).map((r) => [r.status, r.error]),
      [[413, 'BODY_TOO_LARGE']],
      'one whole 413, never a login',
    );
  },
);

t.test('the token opens secure routes and never appears in the logs', async (t) => {
  const token = await login(gw.url);
  const res = await fetch(`${gw.url}/api/whoami`, {
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(res.status, 200);
  const echo = (await res.json()) as { headers: Record<string, string> };
  t.equal(echo.headers['x-user'], 'alice');
  // The access log is flushed on a timer: wait for this request's line, so that the checks
  // below read a log that holds it rather than pass on one that is not written yet.
  t.ok(
    await waitFor(() => gw.output().includes('"path":"/api/whoami"'), 5_000),
    'the access line of the request is written',
  );
  t.notOk(gw.output().includes(token), 'no token in the log output');
  t.notOk(gw.output().includes('alice-password'), 'no password in the log output');
});
