// What the store gate's tests share (test/shared-store-gate.test.ts, test/attack24b-gate.test.ts).
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { openStore, STORE_FILE } from '../../shared/store.js';

export const isRoot = process.getuid?.() === 0;
/** The uid a reader runs as when it must be another user than the store's owner. */
export const NOBODY = 65534;

/** The gate file of the store in data dir `dir`. */
export function gateOf(dir: string): string {
  return join(dir, `${STORE_FILE}-gate`);
}

/** Creates the store in `dir` (a writer's open and close). */
export async function makeStore(dir: string): Promise<void> {
  await openStore(dir, { readOnly: false }).close();
}

/** The pid of a process that has exited. */
export function deadPid(): number {
  const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(run.stdout);
}

/**
 * A store in `<testdir>/data` that another user (NOBODY) may read, with the data dir's mode
 * `dataMode` (0o555: that user cannot create the gate; 0o755: nor remove one). Returns the
 * data dir.
 */
export async function storeForOtherReader(t: Test, dataMode: number): Promise<string> {
  const dir = t.testdir({ data: {} });
  const data = join(dir, 'data');
  await makeStore(data);
  chmodSync(join(data, `${STORE_FILE}-lock`), 0o666);
  chmodSync(join(data, STORE_FILE), 0o644);
  chmodSync(dir, 0o755);
  chmodSync(data, dataMode);
  return data;
}
