// Attack on the verified-token cache keyed by a token's last 16 characters
// (worker/session-cache.ts), through a real gateway: once a token is cached, nothing but that
// exact token may open a request, whatever it shares with it; revocation still applies to the
// cached token.
import { request } from 'node:http';
import t from 'tap';
import { loginWithId, revokeTokenId, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const gw = await startGateway({
  users: [
    { username: 'alice', password: 'alice-password' },
    { username: 'bob', password: 'bob-password' },
  ],
  config: { num_instances: 1 },
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** The status of GET /api/x with this raw Authorization value (latin1 on the wire). */
function get(authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: gw.port, path: '/api/x', agent: false, headers: {} },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    // Written raw: Node's client would refuse some of these values.
    req.setHeader('authorization', Buffer.from(authorization, 'latin1').toString('latin1'));
    req.end();
  });
}

/** `token` with the character at `at` swapped for another base64url character. */
function swapped(token: string, at: number, to?: string): string {
  const c = token.charAt(at);
  const next = to ?? (c === 'A' ? 'B' : 'A');
  return token.slice(0, at) + next + token.slice(at + 1);
}

t.test('only the exact cached token opens; revocation still bites', async (t) => {
  const alice = await loginWithId(gw.url);
  const bob = await loginWithId(gw.url, 'bob', 'bob-password');
  const token = alice.token;
  t.equal(await get(`Bearer ${token}`), 200, 'the token opens (and is cached now)');
  t.equal(await get(`Bearer ${token}`), 200, 'again, from the cache');
  const variants: [string, string][] = [
    ['same ending, start of another token', bob.token.slice(0, -16) + token.slice(-16)],
    ['one character more', `${token}A`],
    ['a padding character', `${token}=`],
    ['one character less', token.slice(0, -1)],
    ['first character less', token.slice(1)],
    ['its last 16 characters', token.slice(-16)],
    ['its last 17 characters', token.slice(-17)],
    ['the token twice', token + token],
    [
      'a percent-encoded character',
      `${token.slice(0, 5)}%${token.charCodeAt(5).toString(16)}${token.slice(6)}`,
    ],
    ['a latin1 look-alike of the last char', `${token.slice(0, -1)}\u00c0`],
    ['a comma and the token', `${token},${token}`],
    ['an inner space', `${token.slice(0, 20)} ${token.slice(20)}`],
  ];
  for (let at = 0; at < token.length; at++) variants.push([`position ${at}`, swapped(token, at)]);
  for (let at = token.length - 16; at < token.length; at++) {
    const c = token.charAt(at);
    const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
    if (flipped !== c) variants.push([`case of position ${at}`, swapped(token, at, flipped)]);
  }
  const opened: string[] = [];
  for (const [name, value] of variants) {
    if (value === token) continue;
    const status = await get(`Bearer ${value}`);
    if (status !== 401 && status !== 400) opened.push(`${name}: ${status}`);
  }
  t.same(opened, [], `${variants.length} near-misses refused`);
  t.equal(await get(`Bearer ${token}`), 200, 'the token still opens: its entry was left alone');

  t.equal(await revokeTokenId(gw.url, alice.tokenId), 200);
  t.ok(
    await waitFor(async () => (await get(`Bearer ${token}`)) === 401, 5_000),
    'the cached token is refused once revoked',
  );
  t.equal(await get(`Bearer ${bob.token}`), 200, "bob's token is unaffected");
});
