// Attack on request buffering (worker/proxy-handler.ts forward, readBody in worker/uws-io.ts):
// framing of bodies read whole before forwarding. Content-Length spellings, bytes pipelined
// behind a buffered body, methods whose body has no meaning (their upstream connection must
// close), every byte value at the sizes around the buffering and joined-write limits, and
// header values above 0x7f in a head written joined to its body.
import { createHash } from 'node:crypto';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, pausedClient, rawConnection, rawExchange } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** Answers `<method> <body length> <body sha>`; keeps the connection. */
const upstream = await startHostileUpstream((req) => {
  const answer = `${req.method} ${req.body.length} ${sha(req.body)}`;
  return { chunks: [`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\n\r\n${answer}`] };
});
const gw = await startGateway({
  config: { num_instances: 1 },
  routes: routesYaml(upstream.origin, [{ prefix: '/pub', secure: false }]),
  env: { PROXYAUTH_LOG_LEVEL: 'warn' },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const head = (method: string, path: string, extra: string) =>
  `${method} ${path} HTTP/1.1\r\nhost: gw\r\n${extra}\r\n`;

/** Every byte value, repeated to `n` bytes. */
const allBytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));

const requestsTo = (path: string) => upstream.requests.filter((r) => r.target === path);

t.test('Content-Length spellings: refused before anything goes upstream', async (t) => {
  const cases = [
    '+5',
    '-5',
    '5.0',
    '0x5',
    '1e1',
    '5, 5',
    '5,5',
    '99999999999999999999',
    '1234567890123456',
  ];
  for (const [i, value] of cases.entries()) {
    const path = `/pub/cl-${i}`;
    const result = await rawExchange(gw.port, [
      Buffer.concat([Buffer.from(head('POST', path, `content-length: ${value}\r\n`)), allBytes(5)]),
    ]);
    t.equal(result.responses[0]?.status, 400, `content-length: ${value} is 400`);
    t.equal(requestsTo(path).length, 0, `content-length: ${value}: nothing upstream`);
    t.ok(result.closed, `content-length: ${value}: connection closed`);
  }
  const twice = await rawExchange(gw.port, [
    `${head('POST', '/pub/cl-two', 'content-length: 5\r\ncontent-length: 5\r\n')}hello`,
  ]);
  t.equal(twice.responses[0]?.status, 400, 'two Content-Length lines, same value: 400');
  const both = await rawExchange(gw.port, [
    `${head('POST', '/pub/cl-te', 'content-length: 5\r\ntransfer-encoding: chunked\r\n')}5\r\nhello\r\n0\r\n\r\n`,
  ]);
  t.equal(both.responses[0]?.status, 400, 'Content-Length with Transfer-Encoding: 400');
  t.equal(requestsTo('/pub/cl-two').length + requestsTo('/pub/cl-te').length, 0);
});

t.test('leading zeros and OWS: the same length, forwarded whole', async (t) => {
  for (const [i, value] of ['00005', ' 5 ', '5\t', '\t5'].entries()) {
    const path = `/pub/ows-${i}`;
    const result = await rawExchange(gw.port, [
      `${head('POST', path, `content-length:${value}\r\n`)}hello`,
    ]);
    const answer = result.responses[0]?.body.toString();
    t.equal(answer, `POST 5 ${sha(Buffer.from('hello'))}`, JSON.stringify(value));
    const seen = requestsTo(path)[0];
    t.equal(seen?.body.toString(), 'hello', `${JSON.stringify(value)}: the body upstream`);
    const sentLength = seen?.headers.filter(([n]) => n === 'content-length').map(([, v]) => v);
    t.same(sentLength?.map(Number), [5], 'one content-length upstream, equal to the body');
  }
});

/*
 * uWS hands over no request pipelined behind one still unanswered: it drops the connection
 * (README, "a second request pipelined behind one the gateway answers asynchronously"). Bytes
 * behind a buffered body in the same packet must then reach no backend as part of that body
 * or as a request of their own.
 */
t.test('bytes behind a buffered body in its packet: never glued, never a request', async (t) => {
  for (const size of [1, 5, 16383, 16384, 16385, 65536]) {
    const body = allBytes(size);
    const a = `/pub/pipe-a-${size}`;
    const b = `/pub/pipe-b-${size}`;
    const packet = Buffer.concat([
      Buffer.from(head('POST', a, `content-length: ${size}\r\n`)),
      body,
      Buffer.from(head('POST', b, 'content-length: 3\r\n')),
      Buffer.from('xyz'),
    ]);
    const result = await rawExchange(gw.port, [packet], { waitMs: 1000 });
    t.ok(result.closed, `${size}: the connection is closed`);
    t.ok(result.responses.length <= 1, `${size}: at most the first request is answered`);
    const first = requestsTo(a)[0];
    if (first !== undefined) t.equal(sha(first.body), sha(body), `${size}: the body, exactly`);
    t.equal(requestsTo(b).length, 0, `${size}: the request behind it reaches no backend`);
  }
});

t.test('a body sent late, then the next request once answered: served in order', async (t) => {
  for (const size of [5, 16384, 16385]) {
    const body = allBytes(size);
    const socket = await rawConnection(gw.port);
    let data = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
    });
    const answers = async (n: number) => {
      const deadline = Date.now() + 3000;
      while (parseResponses(data, []).responses.length < n && Date.now() < deadline)
        await sleep(10);
      return parseResponses(data, []).responses.map((r) => r.body.toString());
    };
    socket.write(head('POST', `/pub/late-a-${size}`, `content-length: ${size}\r\n`));
    await sleep(300);
    socket.write(body);
    await answers(1);
    socket.write(`${head('POST', `/pub/late-b-${size}`, 'content-length: 3\r\n')}xyz`);
    t.same(
      await answers(2),
      [`POST ${size} ${sha(body)}`, `POST 3 ${sha(Buffer.from('xyz'))}`],
      `${size}: both answers, in order`,
    );
    socket.destroy();
  }
});

t.test('every byte value, at the buffering and joined-write limits', async (t) => {
  for (const size of [16383, 16384, 16385, 65535, 65536, 65537]) {
    const body = allBytes(size);
    const res = await fetch(`${gw.url}/pub/bytes-${size}`, { method: 'POST', body });
    t.equal(await res.text(), `POST ${size} ${sha(body)}`, `${size} bytes arrive intact`);
  }
});

t.test(
  'a GET, HEAD, DELETE or OPTIONS with a small body: its upstream connection closes',
  async (t) => {
    for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
      const path = `/pub/meaningless-${method}`;
      const client = await pausedClient(gw.port, [method, 'GET']);
      const first = await client.ask(
        `${head(method, path, 'content-length: 5\r\n')}hello`,
        0,
        3000,
      );
      t.equal(first.responses[0]?.status, 200, `${method}: answered`);
      const next = await client.ask(head('GET', `${path}-next`, ''), 0, 3000);
      t.equal(
        next.responses[0]?.status,
        200,
        `${method}: the next request on the client connection`,
      );
      client.close();
      const seen = requestsTo(path)[0];
      t.equal(seen?.body.toString(), 'hello', `${method}: the body went with it`);
      t.match(seen?.head, /\r\nconnection: close\r\n/i, `${method}: sent with connection: close`);
      const connection = upstream.connections[seen!.connection]!;
      t.equal(connection.requests.at(-1), seen, `${method}: the last request on its connection`);
      await sleep(100);
      t.ok(connection.closed, `${method}: which is closed`);
      t.not(
        requestsTo(`${path}-next`)[0]?.connection,
        seen?.connection,
        `${method}: next on another`,
      );
    }
  },
);

// uWS strips bytes above 0x7f at either end of a value (README): this one has ASCII at both
// ends. A value that is not UTF-8 is refused (400) before routing.
t.test('a UTF-8 header value goes upstream as the client sent it, body joined', async (t) => {
  const value = Buffer.from('caf\u00e9 \u00ff \u20ac.', 'utf8');
  for (const size of [1000, 16384, 65536, 65537]) {
    const path = `/pub/hv-${size}`;
    const packet = Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nhost: gw\r\nx-utf8: `),
      value,
      Buffer.from(`\r\ncontent-length: ${size}\r\n\r\n`),
      allBytes(size),
    ]);
    const result = await rawExchange(gw.port, [packet]);
    t.equal(result.responses[0]?.body.toString(), `POST ${size} ${sha(allBytes(size))}`, `${size}`);
    const raw = Buffer.from(requestsTo(path)[0]?.head ?? '', 'latin1');
    t.ok(
      raw.includes(Buffer.concat([Buffer.from('\r\nx-utf8: '), value, Buffer.from('\r\n')])),
      `${size}: same bytes`,
    );
  }
});
