/**
 * Revocation propagation over Redis (issue 10, section 3): two gateways sharing a secret and one
 * redis-server (no persistence), COUNT revocations issued on node 1 through the admin API, and
 * the time until each token is refused on node 2, found by polling node 2. Prints p50/p99/max.
 *
 *   npm run build && node dist/bench/revocation-propagation.js [--count 1000] [--instances 2]
 *
 * Latency of one revocation: from the moment its POST /adm/revoke is sent to node 1 until a GET
 * on node 2 with its token answers 401 (so it includes node 1's admin answer and the polling
 * gap). Before timing, every token is checked to be accepted by node 2 (200), so a 401 means
 * revoked, not broken.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hashPassword } from '../crypto-pool/password.js';
import { TokenCodec } from '../shared/token-codec.js';
import { readReadiness } from '../supervisor/ready-signal.js';
import { freePort } from './free-port.js';

const CLI = fileURLToPath(new URL('../supervisor/cli.js', import.meta.url));
const ADMIN = randomBytes(32).toString('hex');
const SECRET = randomBytes(72).toString('base64url');
const USER = 'bench';
/** Revocations are sent this far apart (a steady 200 per second). */
const PACE_MS = 5;
/** Token checks in flight on node 2 at once. */
const POLLERS = 16;

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    instances: { type: 'string', default: '2' },
  },
});
const COUNT = Number(values.count);
const INSTANCES = Number(values.instances);

const children: ChildProcess[] = [];
const dir = await mkdtemp(join(tmpdir(), 'proxyauth-propagation-'));
try {
  await main();
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await rm(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const redisPort = await freePort();
  await startRedis(redisPort);
  const upstream = createServer((_req, res) => res.end('hello'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamPort = (upstream.address() as { port: number }).port;
  const hash = await hashPassword(randomBytes(12).toString('hex'));
  const one = await startNode('one', redisPort, upstreamPort, hash);
  const two = await startNode('two', redisPort, upstreamPort, hash);
  await waitUntil(async () => (await subscribers(redisPort)) >= 2, 10_000, 'both buses subscribed');

  const codec = new TokenCodec(SECRET);
  const now = Math.floor(Date.now() / 1000);
  const tokens = Array.from({ length: COUNT }, () => {
    const { token, claims } = codec.issue(USER, 3600, now);
    return { token, tokenId: codec.tokenId(claims) };
  });
  // Correctness before timing: node 2 accepts every token.
  const before = await mapLimit(tokens, POLLERS, (t) => status(two, t.token));
  const bad = before.filter((s) => s !== 200).length;
  if (bad > 0) throw new Error(`${bad} tokens were not accepted by node 2 before revocation`);

  const sentAt = new Array<number>(COUNT).fill(0);
  const refusedAt = new Array<number>(COUNT).fill(0);
  const answerMs: number[] = [];
  let issued = 0;
  const issuing = (async () => {
    for (let i = 0; i < COUNT; i++) {
      const started = performance.now();
      sentAt[i] = started;
      issued = i + 1;
      const res = await fetch(`${one}/adm/revoke`, {
        method: 'POST',
        headers: { 'x-auth-token': ADMIN, 'content-type': 'application/json' },
        body: JSON.stringify({ token_id: tokens[i]!.tokenId }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`revoke ${i}: ${res.status}`);
      answerMs.push(performance.now() - started);
      const wait = PACE_MS - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const polling = (async () => {
    let done = 0;
    const deadline = Date.now() + 120_000;
    while (done < COUNT && Date.now() < deadline) {
      const pending: number[] = [];
      for (let i = 0; i < issued; i++) if (refusedAt[i] === 0) pending.push(i);
      if (pending.length === 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      await mapLimit(pending, POLLERS, async (i) => {
        if ((await status(two, tokens[i]!.token)) === 401) {
          refusedAt[i] = performance.now();
          done++;
        }
      });
    }
    if (done < COUNT) throw new Error(`${COUNT - done} revocations never reached node 2`);
  })();
  await Promise.all([issuing, polling]);
  upstream.close();
  const latencies = refusedAt.map((r, i) => r - sentAt[i]!).sort((a, b) => a - b);
  const answers = answerMs.sort((a, b) => a - b);
  const row = (name: string, xs: number[]) =>
    `| ${name} | ${pct(xs, 0.5)} | ${pct(xs, 0.99)} | ${xs.at(-1)!.toFixed(1)} |`;
  process.stdout.write(
    [
      `revocations: ${COUNT}, ${INSTANCES} edges per node, one sent every ${PACE_MS} ms`,
      '',
      '| ms | p50 | p99 | max |',
      '|---|---|---|---|',
      row('admin answer on node 1', answers),
      row('sent on node 1 → refused on node 2', latencies),
      '',
      JSON.stringify({
        count: COUNT,
        instances: INSTANCES,
        propagationMs: summary(latencies),
        answerMs: summary(answers),
      }),
      '',
    ].join('\n'),
  );
}

function pct(sorted: number[], q: number): string {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(1);
}

function summary(sorted: number[]): { p50: number; p99: number; max: number } {
  return {
    p50: Number(pct(sorted, 0.5)),
    p99: Number(pct(sorted, 0.99)),
    max: Number(sorted.at(-1)!.toFixed(1)),
  };
}

async function status(base: string, token: string): Promise<number> {
  const res = await fetch(`${base}/api/x`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

async function startRedis(port: number): Promise<void> {
  const redisDir = join(dir, 'redis');
  await mkdir(redisDir);
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      redisDir,
    ],
    { stdio: 'ignore' },
  );
  children.push(proc);
  await waitUntil(async () => (await subscribers(port)) >= 0, 10_000, 'redis-server answers');
}

/** Subscribers of the bus's channel (-1 while Redis does not answer). */
async function subscribers(port: number): Promise<number> {
  const out = await new Promise<string>((resolve) => {
    const p = spawn('redis-cli', ['-p', String(port), 'PUBSUB', 'NUMSUB', 'proxyauth:revocations']);
    let text = '';
    p.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    p.on('close', (code) => resolve(code === 0 ? text : ''));
  });
  const lines = out.trim().split('\n');
  return lines.length === 2 ? Number(lines[1]) : -1;
}

async function startNode(
  name: string,
  redisPort: number,
  upstreamPort: number,
  hash: string,
): Promise<string> {
  const configDir = join(dir, name);
  await mkdir(configDir, { mode: 0o700 });
  const config = {
    secret: SECRET,
    token_admin: ADMIN,
    host: '127.0.0.1',
    port: 0,
    worker: 1,
    num_instances: INSTANCES,
    timezone: 'UTC',
    redis: `redis://127.0.0.1:${redisPort}`,
    users: [{ username: USER, password: hash }],
  };
  await writeFile(join(configDir, 'config.json'), JSON.stringify(config), { mode: 0o600 });
  await writeFile(
    join(configDir, 'routes.yml'),
    `routes:\n  - prefix: /api\n    target: http://127.0.0.1:${upstreamPort}\n`,
  );
  const proc = spawn(
    process.execPath,
    [CLI, '--config-dir', configDir, '--data-dir', join(configDir, 'data'), '--ready-fd', '3'],
    {
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
      env: { ...process.env, PROXYAUTH_LOG_LEVEL: 'warn' },
    },
  );
  children.push(proc);
  const ready = await readReadiness(proc.stdio[3] as Readable, 30_000);
  if (!ready.ready) throw new Error(`node ${name} did not start: ${ready.code} ${ready.error}`);
  return `http://127.0.0.1:${ready.port}`;
}

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
