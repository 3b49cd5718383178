// The store's gate (shared/store-gate.ts): a process opens or closes the store only while it
// holds `<store>-gate`, waits for another process's, takes over one left by a dead process,
// and opens without it where it cannot create one. The races it closes are tested with real
// processes in shared-store-concurrent-open.test.ts.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as lmdb from 'lmdb';
import t from 'tap';
import { openStore, STORE_FILE } from '../shared/store.js';
import { holdStoreGate } from '../shared/store-gate.js';
import {
  deadPid,
  gateOf,
  isRoot,
  makeStore,
  NOBODY,
  storeForOtherReader,
} from './helpers/store-gate.js';
import { cannotRunAs, openInChild } from './helpers/store-process.js';

t.test('open and close leave no gate behind', async (t) => {
  const dir = t.testdir();
  const store = openStore(dir, { readOnly: false });
  t.notOk(existsSync(gateOf(dir)), 'none while open');
  const reader = openStore(dir, { readOnly: true });
  await reader.close();
  await store.close();
  t.notOk(existsSync(gateOf(dir)), 'none after close');
});

t.test('a gate of this process is shared by its own opens and closes', async (t) => {
  const dir = t.testdir();
  await makeStore(dir);
  const release = holdStoreGate(join(dir, STORE_FILE));
  t.ok(existsSync(gateOf(dir)), 'held');
  const started = Date.now();
  await openStore(dir, { readOnly: true }).close();
  t.ok(Date.now() - started < 1000, 'no wait for its own gate');
  t.ok(existsSync(gateOf(dir)), 'still held by the outer holder');
  release();
  release();
  t.notOk(existsSync(gateOf(dir)), 'released once, by the last holder');
});

t.test("the open waits for another process's gate", async (t) => {
  const dir = t.testdir();
  await makeStore(dir);
  // A live process holds the gate for 400 ms, then removes it.
  const gate = gateOf(dir);
  const holder = spawn('sh', ['-c', `echo $$ > "$0"; sleep 0.4; rm -f "$0"; sleep 5`, gate]);
  t.teardown(() => holder.kill());
  while (!existsSync(gate)) await new Promise((resolve) => setTimeout(resolve, 5));
  const started = Date.now();
  await openStore(dir, { readOnly: true }).close();
  const waited = Date.now() - started;
  t.ok(waited >= 300, `waited ${waited} ms for the holder`);
});

t.test('a gate left by a dead process, or an old one, is taken over', async (t) => {
  const dir = t.testdir();
  await makeStore(dir);
  writeFileSync(gateOf(dir), `${deadPid()}\n`);
  let started = Date.now();
  await openStore(dir, { readOnly: true }).close();
  t.ok(Date.now() - started < 1000, 'a dead pid: no wait');
  t.notOk(existsSync(gateOf(dir)), 'removed');

  // A live pid (this test's parent, say init) on a gate two minutes old: a pid reused.
  writeFileSync(gateOf(dir), '1\n');
  const old = new Date(Date.now() - 120_000);
  utimesSync(gateOf(dir), old, old);
  started = Date.now();
  await openStore(dir, { readOnly: true }).close();
  t.ok(Date.now() - started < 1000, 'an old gate: no wait');

  writeFileSync(gateOf(dir), `${process.pid}\n`);
  started = Date.now();
  await openStore(dir, { readOnly: true }).close();
  t.ok(Date.now() - started < 1000, 'one this process failed to remove: no wait');
});

// Root writes in any dir: then the reader is another user.
const asNobody = isRoot ? cannotRunAs(NOBODY) : undefined;

t.test('a reader that cannot create the gate opens without it', { skip: asNobody }, async (t) => {
  const data = await storeForOtherReader(t, 0o555);
  try {
    if (isRoot) t.same(openInChild(data, 'ro', NOBODY), { ok: true, tokens: 0 });
    else await openStore(data, { readOnly: true }).close();
    t.notOk(existsSync(gateOf(data)));
  } finally {
    chmodSync(data, 0o700);
  }
});

t.test('an lmdb-js EINVAL at open is STORE_BUSY, naming the store and the lock file', async (t) => {
  const dir = t.testdir();
  await makeStore(dir);
  const path = join(dir, STORE_FILE);
  const einval = Object.assign(new Error('Invalid argument'), { code: 22 });
  const { openEnvironment } = await t.mockImport<typeof import('../shared/store-open.js')>(
    '../shared/store-open.js',
    {
      lmdb: {
        ...lmdb,
        open: () => {
          throw einval;
        },
      },
    },
  );
  for (const readOnly of [true, false]) {
    t.throws(() => openEnvironment(path, readOnly), {
      code: 'STORE_BUSY',
      message: /store at .*proxyauth\.mdb: .*proxyauth\.mdb-lock.*another process.*again/,
      cause: einval,
    });
  }
  t.notOk(existsSync(gateOf(dir)), 'the gate is let go after a failed open');
});
