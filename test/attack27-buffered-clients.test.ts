// Attack on request buffering (worker/proxy-handler.ts forward): what clients and upstreams do
// around a body read whole before forwarding. A client that leaves mid-body (nothing upstream,
// a 499 in the access log, no upstream failure logged); Expect: 100-continue around the limit;
// failover of a buffered POST (a refused backend: the next one, once; a connection that dies
// once the POST was written: 502, never a second copy); many clients each holding a nearly
// complete 16 KiB body (the edge's RSS is printed and bounded).
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import t from 'tap';
import { freePort } from './helpers/free-port.js';
import { logLines, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { edgePids } from './helpers/process-tree.js';
import { parseResponses, rawConnection } from './helpers/raw-http.js';

/** Answers `<target> <body length>`; /stale/second-* is reset on a kept connection. */
const upstream = await startHostileUpstream((req) => {
  if (req.target.startsWith('/stale/second-') && req.indexOnConnection > 0) {
    return { chunks: [], after: 'destroy' };
  }
  const answer = `${req.target} ${req.body.length}`;
  return { chunks: [`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\n\r\n${answer}`] };
});
const refused = await freePort();
const gw = await startGateway({
  config: { num_instances: 1 },
  routes: `routes:
  - prefix: /pub
    target: ${upstream.origin}/pub
    secure: false
  - prefix: /stale
    target: ${upstream.origin}/stale
    secure: false
  - prefix: /fail
    target: http://127.0.0.1:${refused}/dead
    secure: false
    backends: ["${upstream.origin}/live"]
`,
  env: { PROXYAUTH_LOG_LEVEL: 'info' },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const requestsTo = (prefix: string) => upstream.requests.filter((r) => r.target.startsWith(prefix));
const head = (method: string, path: string, extra: string) =>
  `${method} ${path} HTTP/1.1\r\nhost: gw\r\n${extra}\r\n`;

/** A raw connection and the answers it got so far. */
async function client() {
  const socket = await rawConnection(gw.port);
  socket.on('error', () => {});
  let data = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d]);
  });
  return {
    socket,
    text: () => data.toString('latin1'),
    async answers(n: number, ms = 5000) {
      const deadline = Date.now() + ms;
      while (parseResponses(data, []).responses.filter((r) => r.status >= 200).length < n) {
        if (Date.now() > deadline) break;
        await sleep(10);
      }
      return parseResponses(data, []).responses.filter((r) => r.status >= 200);
    },
  };
}

t.test('a client that leaves mid-body: nothing upstream, 499 logged, no failure', async (t) => {
  for (const sent of [0, 1, 8000, 16383]) {
    const path = `/pub/leave-${sent}`;
    const c = await client();
    c.socket.write(head('POST', path, 'content-length: 16384\r\n'));
    if (sent > 0) c.socket.write(Buffer.alloc(sent, 0x61));
    await sleep(200);
    c.socket.destroy();
    await sleep(200);
    t.equal(requestsTo(path).length, 0, `${sent} of 16384 bytes sent: nothing upstream`);
    const lines = logLines(gw.output());
    const access = lines.filter((l) => l.type === 'access' && l.path === path);
    t.same(
      access.map((l) => l.status),
      [499],
      `${sent}: one access line, 499`,
    );
  }
  const warnings = logLines(gw.output()).filter((l) => l.message === 'request failed');
  t.same(warnings, [], 'no request failure logged');
  const res = await fetch(`${gw.url}/pub/after`, { method: 'POST', body: 'x' });
  t.equal(await res.text(), '/pub/after 1', 'the edge serves on');
});

t.test('Expect: 100-continue around the buffering limit', async (t) => {
  for (const size of [1, 1024, 16384, 16385, 70000]) {
    const c = await client();
    c.socket.write(
      head('POST', `/pub/expect-${size}`, `content-length: ${size}\r\nexpect: 100-continue\r\n`),
    );
    const deadline = Date.now() + 3000;
    while (!c.text().includes('\r\n\r\n') && Date.now() < deadline) await sleep(10);
    t.match(c.text(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/, `${size}: 100 first, alone`);
    t.equal(requestsTo(`/pub/expect-${size}`).length, 0, `${size}: nothing upstream yet`);
    c.socket.write(Buffer.alloc(size, 0x62));
    const [answer] = await c.answers(1);
    t.equal(answer?.body.toString(), `/pub/expect-${size} ${size}`, `${size}: the whole body`);
    const seen = requestsTo(`/pub/expect-${size}`)[0];
    t.notOk(
      seen?.headers.some(([n]) => n === 'expect'),
      `${size}: Expect is not forwarded (the gateway read the body)`,
    );
    c.socket.destroy();
  }
});

t.test('a buffered POST to a refused backend goes to the next one, once', async (t) => {
  const before = requestsTo('/live').length;
  const res = await fetch(`${gw.url}/fail/x`, { method: 'POST', body: 'y'.repeat(1000) });
  t.equal(res.status, 200);
  t.equal(await res.text(), '/live/x 1000', 'answered by the live backend, with the body');
  t.equal(requestsTo('/live').length - before, 1, 'sent once');
  const failover = logLines(gw.output()).filter((l) => l.message === 'upstream failover');
  t.ok(failover.length >= 1, 'the failover is logged');
});

t.test(
  'a pooled connection that dies once a buffered POST was written: 502, one copy',
  async (t) => {
    for (const method of ['POST', 'GET']) {
      const c = await client();
      // The first request leaves a kept connection; the second goes on it and is reset.
      c.socket.write(head('GET', `/stale/warm-${method}`, ''));
      await c.answers(1);
      const body = method === 'POST' ? 'z'.repeat(2000) : '';
      const extra = method === 'POST' ? `content-length: ${body.length}\r\n` : '';
      c.socket.write(`${head(method, `/stale/second-${method}`, extra)}${body}`);
      const answers = await c.answers(2);
      const seen = requestsTo(`/stale/second-${method}`);
      t.ok((seen[0]?.indexOnConnection ?? 0) > 0, `${method}: first sent on a kept connection`);
      if (method === 'POST') {
        t.equal(answers[1]?.status, 502, 'POST: 502, not replayed (it was written)');
        t.equal(seen.length, 1, 'POST: the upstream read it once');
      } else {
        t.equal(answers[1]?.status, 200, 'GET: replayed on a new connection');
        t.equal(seen.length, 2, 'GET: read twice, the second time answered');
      }
      c.socket.destroy();
    }
  },
);

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

t.test('300 clients each holding 16383 of 16384 bytes: bounded, then all served', async (t) => {
  const [edge] = await edgePids(gw.proc.pid!);
  const before = await rssKiB(edge!);
  const clients: Awaited<ReturnType<typeof client>>[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < 300; i++) {
    const c = await client();
    c.socket.write(head('POST', `/pub/held-${i}`, 'content-length: 16384\r\n'));
    c.socket.write(Buffer.alloc(16383, 0x63));
    clients.push(c);
    sockets.push(c.socket);
  }
  await sleep(1000);
  const held = await rssKiB(edge!);
  const sentKiB = (300 * 16383) / 1024;
  t.comment(`300 x 16383 B held: edge RSS ${before} -> ${held} KiB (+${held - before})`);
  t.equal(requestsTo('/pub/held-').length, 0, 'nothing upstream while bodies are incomplete');
  t.ok(held - before < 3 * sentKiB + 16 * 1024, `RSS grew ${held - before} KiB for ${sentKiB} KiB`);
  for (const s of sockets) s.write('d');
  const answers = await Promise.all(clients.map((c) => c.answers(1, 15_000)));
  t.equal(
    answers.filter(([a], i) => a?.body.toString() === `/pub/held-${i} 16384`).length,
    300,
    'every body went whole',
  );
  for (const s of sockets) s.destroy();
});
