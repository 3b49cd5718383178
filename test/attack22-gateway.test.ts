// Rate-limit budgets through the real CLI (2 edges), for clients whose names could be confused:
// a user and an address that spell the same, names with spaces, colons and non-ASCII, the same
// client under ratelimit_proxy, two routes' own limits and ratelimit_auth, IPv6 /64 clients.
// One request a day plus a burst: no refill can blur a count.

import { writeFile } from 'node:fs/promises';
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const DAILY = 1 / 86_400;
const ownLimit = `{ requests_per_second: ${DAILY}, burst: 1 }`;
const names = ['127.0.0.1', 'i:x', 'x', 'u:x', 'a b', 'c:d e', 'ü日本', '2001:db8::1'];
const gw = await startGateway({
  users: names.map((username) => ({ username, password: 'pw-0123456789' })),
  config: {
    trusted_proxies: ['127.0.0.1'],
    ratelimit_proxy: { requests_per_second: DAILY, burst: 2 },
    ratelimit_auth: { requests_per_second: DAILY, burst: 9 },
  },
  routes: routesYaml(upstream.origin, [
    { prefix: '/p' },
    { prefix: '/public', secure: false },
    { prefix: '/own', ratelimit: ownLimit },
    { prefix: '/own2', ratelimit: ownLimit },
    { prefix: '/ownpublic', secure: false, ratelimit: ownLimit },
  ]),
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** What the answers looked like, to compare builds. */
const seen: Record<string, string[]> = {};

async function burst(g: RunningGateway, label: string, path: string, headers: object, n = 5) {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${g.url}${path}`, { headers: headers as Record<string, string> });
    await res.arrayBuffer();
    out.push(
      [
        res.status,
        res.headers.get('ratelimit'),
        res.headers.get('ratelimit-policy'),
        res.headers.get('retry-after'),
      ].join(' '),
    );
  }
  seen[label] = out;
  return out.filter((s) => s.startsWith('200')).length;
}

const tokens = new Map<string, string>();
let n = 0;
for (const name of names) {
  // Each login from its own address: the auth budgets under test below stay untouched.
  const res = await fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.1.0.${++n}` },
    body: JSON.stringify({ username: name, password: 'pw-0123456789' }),
  });
  const body = (await res.json()) as { token: string };
  tokens.set(name, body.token);
}
const bearer = (name: string) => ({ authorization: `Bearer ${tokens.get(name)}` });
const from = (address: string) => ({ 'x-forwarded-for': address });

t.test('a user and an address that spell the same have their own budgets', async (t) => {
  t.equal(await burst(gw, 'user 127.0.0.1', '/p', bearer('127.0.0.1')), 3);
  t.equal(await burst(gw, 'address 127.0.0.1', '/public', from('127.0.0.1')), 3);
  t.equal(await burst(gw, 'user 2001:db8::1', '/p', bearer('2001:db8::1')), 3);
  t.equal(await burst(gw, 'address 2001:db8::1', '/public', from('2001:db8::1')), 3);
});

t.test('names with colons, spaces and non-ASCII never share a budget', async (t) => {
  for (const name of ['i:x', 'x', 'u:x', 'a b', 'c:d e', 'ü日本']) {
    t.equal(await burst(gw, `user ${name}`, '/p', bearer(name)), 3, name);
  }
  t.equal(await burst(gw, 'user x again', '/p', bearer('x')), 0, 'x spent its own');
});

t.test('proxy, two routes of their own and auth are separate budgets', async (t) => {
  t.equal(await burst(gw, 'user a b /own', '/own', bearer('a b')), 2);
  t.equal(await burst(gw, 'user a b /own2', '/own2', bearer('a b')), 2);
  t.equal(await burst(gw, 'address 10.2.0.1 /public', '/public', from('10.2.0.1')), 3);
  t.equal(await burst(gw, 'address 10.2.0.1 /ownpublic', '/ownpublic', from('10.2.0.1')), 2);
  const auth: number[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${gw.url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...from('10.2.0.1') },
      body: JSON.stringify({ username: 'x', password: 'pw-0123456789' }),
    });
    await res.arrayBuffer();
    auth.push(res.status);
  }
  seen['auth 10.2.0.1'] = auth.map(String);
  t.equal(auth.filter((s) => s === 200).length, 10, 'ratelimit_auth: burst 9 + 1');
  t.equal(await burst(gw, 'address 10.2.0.1 /public after', '/public', from('10.2.0.1')), 0);
});

t.test('IPv6 clients: one budget per /64', async (t) => {
  t.equal(await burst(gw, 'v6 ::1', '/public', from('2001:db8:5::1'), 2), 2);
  t.equal(await burst(gw, 'v6 ::2', '/public', from('2001:db8:5::2'), 2), 1, 'same /64');
  t.equal(await burst(gw, 'v6 other /64', '/public', from('2001:db8:6::2'), 5), 3);
});

t.teardown(async () => {
  const file = process.env.ATTACK22_OUT;
  if (file !== undefined) await writeFile(file, JSON.stringify(seen, null, 1));
});
