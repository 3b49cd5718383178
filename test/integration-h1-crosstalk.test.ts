// Cross-talk through the own upstream client (worker/h1-client.ts): a hostile or buggy upstream
// sends bytes beyond its answers (a second answer pipelined ahead, a body on 204/304/HEAD, a
// Content-Length too short) while clients with other tokens use the same route concurrently on
// keep-alive connections. No client may get an answer, header or byte meant for another
// request, and the identity the upstream sees is always the request's own token's.
import t, { type Test } from 'tap';
import { Pool } from 'undici';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { type HostileRequest, startHostileUpstream } from './helpers/hostile-upstream.js';

const USERS = ['ann', 'bob', 'cid', 'dee'];

/** A well-formed answer naming a user and a request id, in its body and a header. */
function echo(status: string, user: string, id: string): string {
  const body = `${user}|${id}`;
  return `HTTP/1.1 ${status}\r\nx-echo: ${body}\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
}

function headerOf(req: HostileRequest, name: string): string {
  return req.headers.find(([n]) => n === name)?.[1] ?? '';
}

/** A forged answer: what a client would get if bytes of one exchange became another's. */
const FORGED = echo('200 OK', 'mallory', 'forged');

const up = await startHostileUpstream((req) => {
  const user = headerOf(req, 'x-user');
  const id = headerOf(req, 'x-req');
  const kind = req.target.split('/')[1] ?? '';
  const own = echo('200 OK', user, id);
  switch (kind) {
    case 'pipelined':
      // A second answer ahead of any request, in the same write as the real one.
      return { chunks: [own + FORGED] };
    case 'no-content':
      // 204 with a "body": the body is the forged answer.
      return {
        chunks: [`HTTP/1.1 204 No Content\r\nx-echo: ${user}|${id}\r\n\r\n${FORGED}`],
      };
    case 'not-modified':
      return {
        chunks: [
          `HTTP/1.1 304 Not Modified\r\nx-echo: ${user}|${id}\r\ncontent-length: ${FORGED.length}\r\n\r\n${FORGED}`,
        ],
      };
    case 'head':
      // An answer to HEAD with its body sent anyway.
      return {
        chunks: [
          req.method === 'HEAD'
            ? `HTTP/1.1 200 OK\r\nx-echo: ${user}|${id}\r\ncontent-length: ${FORGED.length}\r\n\r\n${FORGED}`
            : own,
        ],
      };
    case 'short': {
      // Content-Length covers the first 3 bytes of the body; the rest is a forged answer.
      const body = `${user}|${id}`;
      return {
        chunks: [
          `HTTP/1.1 200 OK\r\nx-echo: ${body}\r\ncontent-length: 3\r\n\r\n${body.slice(0, 3)}${FORGED}`,
        ],
      };
    }
    case 'chunked-extra':
      return {
        chunks: [
          `HTTP/1.1 200 OK\r\nx-echo: ${user}|${id}\r\ntransfer-encoding: chunked\r\n\r\n${(user.length + 1 + id.length).toString(16)}\r\n${user}|${id}\r\n0\r\n\r\n${FORGED}`,
        ],
      };
    case 'late-forged':
      // A whole forged answer 50 ms after the real one, on a connection now idle.
      return { chunks: [own, { data: FORGED, delayMs: 50 }] };
    case 'late':
      // The rest of a body the Content-Length did not cover, 30 ms after the answer: the
      // connection is idle by then, or already carries the next request.
      return { chunks: [own, { data: 'leftover body bytes', delayMs: 30 }] };
    default:
      return { chunks: [own] };
  }
});

const gw: RunningGateway = await startGateway({
  users: USERS.map((username) => ({ username, password: `${username}-password` })),
  // Few idle connections: connections are closed and opened all along.
  config: { max_idle_per_host: 3 },
  routes: `routes:\n  - prefix: /x\n    target: ${up.origin}\n    preserve_prefix: false\n`,
});
const tokens = new Map<string, string>();
for (const u of USERS) tokens.set(u, await login(gw.url, u, `${u}-password`));
t.teardown(async () => {
  await gw.stop();
  await up.close();
});

interface Outcome {
  user: string;
  id: string;
  path: string;
  method: string;
  status: number;
  echo: string;
  body: string;
}

/**
 * `perUser` requests per user over `paths`, each user on its own keep-alive pool of 4
 * connections to the gateway, all users at once.
 */
async function storm(
  paths: readonly string[],
  perUser: number,
  method = 'GET',
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(
    USERS.map(async (user) => {
      const client = new Pool(gw.url, { connections: 4 });
      try {
        await Promise.all(
          Array.from({ length: perUser }, async (_, i) => {
            const id = `${user}-${i}`;
            const path = `/x${paths[i % paths.length]}`;
            const res = await client.request({
              path,
              method: method as 'GET',
              headers: { authorization: `Bearer ${tokens.get(user)}`, 'x-req': id },
            });
            const body = await res.body.text();
            const echoed = res.headers['x-echo'];
            outcomes.push({
              user,
              id,
              path,
              method,
              status: res.statusCode,
              echo: typeof echoed === 'string' ? echoed : '',
              body,
            });
          }),
        );
      } finally {
        await client.close();
      }
    }),
  );
  return outcomes;
}

/** Every answer a client got names its own user and request (or is an error, when allowed). */
function checkOwn(t: Test, outcomes: Outcome[], hostile: boolean): void {
  let foreign = 0;
  let failed = 0;
  for (const o of outcomes) {
    const mine = `${o.user}|${o.id}`;
    if (o.status >= 500) {
      failed++;
      continue;
    }
    if (o.echo !== mine || (o.body !== '' && o.body !== mine && o.body !== mine.slice(0, 3))) {
      foreign++;
      if (foreign < 5)
        t.fail(`${o.method} ${o.path} as ${o.user} (${o.id}) got ${o.echo} / ${o.body}`);
    }
  }
  t.equal(foreign, 0, 'no client got another request’s answer');
  if (!hostile) t.equal(failed, 0, 'no request failed');
  // What the upstream saw: each request carried its own token's user.
  for (const req of up.requests) {
    const id = headerOf(req, 'x-req');
    if (id === '') continue;
    const owner = id.slice(0, id.lastIndexOf('-'));
    if (headerOf(req, 'x-user') !== owner)
      t.fail(`request ${id} reached the upstream as ${headerOf(req, 'x-user')}`);
  }
}

t.test('extra bytes in the same read as an answer never reach another request', async (t) => {
  const paths = [
    '/plain',
    '/pipelined',
    '/plain',
    '/short',
    '/chunked-extra',
    '/no-content',
    '/not-modified',
  ];
  const outcomes = await storm(paths, 60);
  checkOwn(t, outcomes, false);
  const byPath = (p: string) => outcomes.filter((o) => o.path === `/x${p}`);
  t.ok(
    byPath('/no-content').every((o) => o.status === 204 && o.body === ''),
    '204: no body',
  );
  t.ok(
    byPath('/not-modified').every((o) => o.status === 304 && o.body === ''),
    '304: no body',
  );
  t.ok(
    byPath('/short').every((o) => o.body === `${o.user}|${o.id}`.slice(0, 3)),
    'a short Content-Length: its bytes only',
  );
});

t.test('a body sent with an answer to HEAD never reaches another request', async (t) => {
  const outcomes = [
    ...(await storm(['/head'], 40, 'HEAD')),
    ...(await storm(['/head', '/plain'], 40)),
  ];
  checkOwn(t, outcomes, false);
});

t.test(
  'bytes that arrive late, on an idle or re-used connection, never become an answer',
  async (t) => {
    const outcomes = await storm(['/late', '/plain', '/plain'], 60);
    checkOwn(t, outcomes, true);
    t.comment(
      `late bytes: ${outcomes.filter((o) => o.status === 502).length} of ${outcomes.length} failed`,
    );
    // A late byte on a connection that carries the next request is that request's failure (502),
    // never its answer; the gateway cannot tell it from the upstream's own answer otherwise.
    t.ok(
      outcomes.every((o) => o.status === 200 || o.status === 502),
      'each request answered or failed, nothing else',
    );
  },
);

t.test('an answer that arrives on an idle connection closes it and reaches nobody', async (t) => {
  const auth = (u: string) => ({ authorization: `Bearer ${tokens.get(u)}`, 'x-req': `${u}-1` });
  const first = await fetch(`${gw.url}/x/late-forged`, { headers: auth('ann') });
  t.equal(await first.text(), 'ann|ann-1');
  const carrier = up.requests.at(-1)!.connection;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(up.connections[carrier]?.closed, 'client', 'the gateway closed the connection');
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${gw.url}/x/plain`, { headers: auth('bob') });
    t.equal(await res.text(), 'bob|bob-1', 'the next requests get their own answers');
  }
});
