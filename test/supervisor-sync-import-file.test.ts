// What `sync import` and the import dir read: only a regular file of bundle size. A FIFO dropped
// in <config dir>/import/ used to block the reload's open() forever (no reload applied again,
// and the supervisor could not exit after "gateway stopped"); /dev/zero or a huge file was read
// whole into the supervisor's memory.
import { execFileSync } from 'node:child_process';
import { symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { SyncError } from '../supervisor/sync-bundle.js';
import { MAX_BUNDLE_FILE_BYTES, readBundleFile } from '../supervisor/sync-import.js';

const source = (dir: string) => ({ configDir: dir, dataDir: dir, passphrase: undefined });

async function refusal(file: string, dir: string): Promise<SyncError> {
  const err = await readBundleFile(file, source(dir)).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SyncError)) throw new Error(`not a SyncError: ${String(err)}`);
  return err;
}

t.test('a FIFO is refused at once, not waited on', async (t) => {
  const dir = t.testdir();
  const fifo = join(dir, 'a.pgp');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  const err = await refusal(fifo, dir);
  t.equal(err.code, 'SYNC_KEY_FILE');
  t.match(err.message, /not a regular file/);
  t.ok(Date.now() - started < 2_000);
});

t.test('a device behind a symlink is refused before it is read', async (t) => {
  const dir = t.testdir();
  await symlink('/dev/zero', join(dir, 'z.pgp'));
  const err = await refusal(join(dir, 'z.pgp'), dir);
  t.equal(err.code, 'SYNC_KEY_FILE');
  t.match(err.message, /not a regular file/);
});

t.test('a file larger than a bundle can be is refused by its size', async (t) => {
  const dir = t.testdir();
  const big = join(dir, 'big.pgp');
  await writeFile(big, '');
  await truncate(big, MAX_BUNDLE_FILE_BYTES + 1);
  const err = await refusal(big, dir);
  t.equal(err.code, 'SYNC_KEY_FILE');
  t.match(err.message, /larger than a bundle/);
});

t.test('a small regular file is read (and refused as not OpenPGP)', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'x.pgp'), 'hello');
  const err = await refusal(join(dir, 'x.pgp'), dir);
  t.equal(err.code, 'SYNC_NOT_OPENPGP');
});
