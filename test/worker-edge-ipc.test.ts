import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { ConfigSnapshot, EdgeMessage } from '../shared/ipc.js';
import { openStore } from '../shared/store.js';
import { logged, waitFor } from './helpers/gateway.js';

// The real edge entry point (dist/worker/edge.js), driven over IPC by the test as the
// supervisor would: what it does with malformed, unknown and out-of-order messages.
const EDGE = fileURLToPath(new URL('../dist/worker/edge.js', import.meta.url));

// The supervisor creates the store before any edge starts; the edge only opens it read-only.
const dataDir = mkdtempSync(join(tmpdir(), 'proxyauth-edge-ipc-'));
await openStore(dataDir, { readOnly: false }).close();
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

function snapshot(generation: number, secret = 's'.repeat(80), data = dataDir): ConfigSnapshot {
  return {
    generation,
    configDir: '/nonexistent',
    dataDir: data,
    files: { config: 'config.json', routes: 'routes.yml' },
    raw: {
      config: { secret, host: '127.0.0.1', port: 0, worker: 1, timezone: 'UTC', users: [] },
      routes: { routes: [] },
    },
    keyRing: { active: secret, verifyOnly: [] },
  };
}

const child = fork(EDGE, [], {
  stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  env: { ...process.env, PROXYAUTH_CRYPTO_THREADS: '1' },
});
let output = '';
child.stdout!.on('data', (d: Buffer) => {
  output += d.toString();
});
child.stderr!.on('data', (d: Buffer) => {
  output += d.toString();
});
const messages: EdgeMessage[] = [];
child.on('message', (m) => messages.push(m as EdgeMessage));
const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
t.teardown(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

const dropped = () => logged(output, { message: 'malformed message from the supervisor, dropped' });

/** The reply to request `id`; generous: a loaded machine loads the edge's modules slowly. */
async function reply(id: number): Promise<EdgeMessage | undefined> {
  await waitFor(() => messages.some((m) => 'id' in m && m.id === id), 60_000);
  return messages.find((m) => 'id' in m && m.id === id);
}

t.test('malformed and unknown messages are logged and dropped, never applied', async (t) => {
  // The old protocol applied anything that was not `drain` as a config.
  child.send({ type: 'config', snapshot: snapshot(1) });
  child.send({ type: 'start', id: 1, snapshot: snapshot(1), tls: null, extra: true });
  child.send({ type: 'listen', id: 2, host: '127.0.0.1', port: 'any' });
  child.send('drain');
  // Messages are handled in order: once this one is answered, the four above were seen.
  child.send({ type: 'apply-config', id: 3, snapshot: snapshot(1) });
  t.match(
    await reply(3),
    { type: 'reply-error', code: 'EDGE_WRONG_STATE' },
    'refused before start',
  );
  t.ok(
    await waitFor(() => dropped().length === 4, 5_000),
    'four drops logged (log lines may trail the reply)',
  );
  t.same(
    dropped().map((l) => l.type),
    ['config', 'start', 'listen', 'string'],
  );
  t.same(
    messages.map((m) => ('id' in m ? m.id : m.type)),
    [3],
    'no reply to any of them',
  );
  t.equal(child.exitCode, null, 'still running');
});

t.test('start, listen, a rejected config, then drain', async (t) => {
  // A revocation change is applied at once, even before the start (not queued behind it).
  child.send({
    type: 'revocations',
    id: 40,
    changes: [
      { op: 'lift-user', user: 'nobody' },
      { op: 'revoke-user', user: 'u', notBefore: 1, until: 2e9, revokedAt: 1 },
    ],
  });
  child.send({ type: 'start', id: 4, snapshot: snapshot(7), tls: null });
  t.same(await reply(40), { type: 'reply', id: 40, value: { applied: 1 } }, 'one real change');
  t.same(await reply(4), { type: 'reply', id: 4, value: { generation: 7 } });
  child.send({ type: 'listen', id: 5, host: '127.0.0.1', port: 0 });
  const listening = await reply(5);
  const port = listening?.type === 'reply' ? (listening.value as { port: number }).port : 0;
  t.ok(port > 0, 'replies with the port it got');
  const res = await fetch(`http://127.0.0.1:${port}/nowhere`);
  t.equal(res.status, 404, 'serving');
  child.send({ type: 'apply-config', id: 6, snapshot: snapshot(8, 'short') });
  t.match(await reply(6), { type: 'reply-error', code: 'CONFIG_REJECTED', reason: /secret/ });
  t.equal((await fetch(`http://127.0.0.1:${port}/nowhere`)).status, 404, 'still serving');
  // Two materials whose key ids collide (test/shared-token-codec-ring.test.ts).
  const colliding = ['key ring collision test 14478', 'key ring collision test 37071'];
  child.send({
    type: 'apply-config',
    id: 7,
    snapshot: { ...snapshot(9), keyRing: { active: 's'.repeat(80), verifyOnly: colliding } },
  });
  const rejected = await reply(7);
  t.match(rejected, { type: 'reply-error', code: 'CONFIG_REJECTED', reason: /41bc6811/ });
  t.notOk(JSON.stringify(rejected).includes('collision test'), 'the reply holds no key material');
  t.equal((await fetch(`http://127.0.0.1:${port}/nowhere`)).status, 404, 'still serving');
  child.send({ type: 'drain', timeoutMs: 1_000 });
  t.equal(await exited, 0, 'drained and exited 0');
  t.notOk(output.includes('collision test'), 'no key material in any log line');
  t.notOk(output.includes('s'.repeat(80)), 'nor the secret');
});

t.test('an edge without a store refuses to start and exits 1', async (t) => {
  const edge = fork(EDGE, [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, PROXYAUTH_CRYPTO_THREADS: '1' },
  });
  const got: EdgeMessage[] = [];
  edge.on('message', (m) => got.push(m as EdgeMessage));
  const code = new Promise<number | null>((resolve) => edge.once('exit', resolve));
  t.teardown(() => {
    if (edge.exitCode === null) edge.kill('SIGKILL');
  });
  edge.send({ type: 'start', id: 1, snapshot: snapshot(1, undefined, '/nonexistent'), tls: null });
  t.equal(await code, 1);
  t.match(got, [
    {
      type: 'reply-error',
      id: 1,
      code: 'EDGE_START_FAILED',
      reason: /no store at \/nonexistent\/proxyauth\.mdb/,
    },
  ]);
});
