// Forward-auth judges the URI a trusted proxy names in X-Original-URI / X-Forwarded-Uri. uWS
// strips bytes above 0x7f at the end of a header value (README "Known limits"), so a URI sent
// with raw UTF-8 bytes at its end (nginx's $request_uri and Caddy's {http.request.uri} keep
// the client's raw bytes) is judged without them: `/café` as `/caf`. When that shorter path
// falls under another, more open route than the whole one (a public `/` beside a secure
// `/café`), the ask was answered 200 and the proxy served the protected path to anyone.
// Proxied requests are not concerned: their path comes from the request line, kept whole.
// Now an ask whose path a route prefix extends by non-ASCII chars alone is refused (400):
// fail closed, since a cut URI cannot be told from a whole one.
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { rawAnswer } from './helpers/raw-answer.js';

const gw = await startGateway({
  config: { num_instances: 1, trusted_proxies: ['127.0.0.1'] },
  routes: `routes:
  - prefix: /
    target: http://127.0.0.1:9
    secure: false
  - prefix: /café
    target: http://127.0.0.1:9
  - prefix: /docs/日本
    target: http://127.0.0.1:9
  - prefix: /api
    target: http://127.0.0.1:9
`,
});
t.teardown(() => gw.stop());

/** A forward-auth ask for `uri` (its UTF-8 bytes as they are), no credential; the status. */
async function ask(uri: string, header = 'X-Original-URI'): Promise<number> {
  const head = Buffer.concat([
    Buffer.from(`GET /auth/verify HTTP/1.1\r\nHost: gw\r\nX-Original-Method: GET\r\n${header}: `),
    Buffer.from(uri, 'utf8'),
    Buffer.from('\r\nConnection: close\r\n\r\n'),
  ]);
  return (await rawAnswer(gw.port, head)).status;
}

t.test(
  'a secure route whose prefix ends in non-ASCII is never judged as a shorter one',
  async (t) => {
    for (const header of ['X-Original-URI', 'X-Forwarded-Uri']) {
      for (const uri of ['/café', '/CAFé', '/docs/日本', '/docs/日']) {
        t.not(await ask(uri, header), 200, `${header}: ${uri} is not let through`);
      }
    }
  },
);

t.test('controls: what the table allows and refuses otherwise', async (t) => {
  t.equal(await ask('/open'), 200, 'the public root');
  t.equal(await ask('/caf/x'), 200, 'an ASCII path under the root, in another segment');
  t.equal(await ask('/caf?x=1'), 200, 'with a query the path is whole');
  t.equal(await ask('/café/x'), 401, 'under the secure route, ASCII at the end');
  t.equal(await ask('/caf%C3%A9'), 401, 'percent-encoded: judged whole');
  t.equal(await ask('/api/é'), 401, 'non-ASCII at the end under a secure route');
  t.equal(await ask('/docs/x'), 200, 'beside the non-ASCII route');
});

t.test('the price: a path that a cut one cannot be told from is refused (400)', async (t) => {
  // `/caf` itself, and whole URIs that arrive as `/caf` or `/docs/` (under the root whole
  // too), are refused rather than judged: which one the proxy meant cannot be known.
  for (const uri of ['/caf', '/caféé', '/docs/', '/docs/日本本', '/caf?é']) {
    t.equal(await ask(uri), 400, uri);
  }
});
