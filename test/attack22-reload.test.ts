// Reloads while requests flow: a reload that keeps a limit keeps every budget; one that changes
// it starts fresh budgets, and going back to the old parameters finds the old ones (their debt
// is kept by the supervisor); at no time does a client get more than that.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Agent, fetch } from 'undici';
import { startGateway } from './helpers/gateway.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const DAILY = 1 / 86_400;
const limit = (burst: number) => ({ requests_per_second: DAILY, burst });
const gw = await startGateway({
  config: { trusted_proxies: ['127.0.0.1'], ratelimit_proxy: limit(9) },
  routes: routesYaml(upstream.origin, [{ prefix: '/public', secure: false }]),
});
const dispatcher = new Agent({ connections: 16 });
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
  await dispatcher.close();
});

const CLIENTS = 300;
const address = (i: number) => `10.3.${i >> 8}.${i & 255}`;
const admitted = new Array<number>(CLIENTS).fill(0);
const file = join(gw.configDir, 'config.json');

async function reload(proxy: object, signal: boolean) {
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  raw.ratelimit_proxy = proxy;
  await writeFile(file, JSON.stringify(raw, null, 2));
  if (signal) gw.proc.kill('SIGHUP');
}

/** `rounds` requests from every client, a round at a time, all clients at once. */
async function flow(rounds: number, during?: () => Promise<void>) {
  const side = during?.();
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      admitted.map(async (_, i) => {
        const res = await fetch(`${gw.url}/public/x`, {
          headers: { 'x-forwarded-for': address(i) },
          dispatcher,
        });
        await res.arrayBuffer();
        if (res.status === 200) admitted[i]!++;
        else if (res.status !== 429) throw new Error(`status ${res.status}`);
      }),
    );
  }
  await side;
}

const spread = () => {
  const sorted = [...admitted].sort((a, b) => a - b);
  return { min: sorted[0], max: sorted[sorted.length - 1] };
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const results: Record<string, unknown> = {};

/** Once the last reload has taken (1.5 s): `rounds` from every client, counted afresh. */
async function settledFlow(rounds: number) {
  await pause(1500);
  admitted.fill(0);
  await flow(rounds);
  return spread();
}

t.test('reloads that keep the limit keep the budgets', async (t) => {
  await flow(15, async () => {
    for (let i = 0; i < 5; i++) {
      await reload(limit(9), i % 2 === 0);
      await pause(150);
    }
  });
  results.kept = spread();
  t.same(spread(), { min: 10, max: 10 }, 'burst 9 + 1 each, however many reloads');
});

t.test('a changed limit starts fresh budgets; the old one is found again', async (t) => {
  await reload(limit(4), true);
  results.changed = await settledFlow(8);
  t.same(results.changed, { min: 5, max: 5 }, 'the new policy: burst 4 + 1');
  await reload(limit(9), true);
  results.back = await settledFlow(5);
  t.same(results.back, { min: 0, max: 0 }, 'back to the old parameters: their budgets are spent');
});

t.test('limits removed and restored while requests flow', async (t) => {
  admitted.fill(0);
  await flow(6, async () => {
    await pause(50);
    await reload({ requests_per_second: 0 }, true);
    await pause(400);
    await reload(limit(9), true);
  });
  results.offOn = spread();
  results.afterOffOn = await settledFlow(3);
  t.same(results.afterOffOn, { min: 0, max: 0 }, 'restored: the spent budgets still hold');
});

t.teardown(async () => {
  const out = process.env.ATTACK22_OUT;
  if (out !== undefined) await writeFile(out, JSON.stringify(results));
});
