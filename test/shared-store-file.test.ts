// The checks of the store file made before lmdb-js opens it (see shared/store-file.ts), on
// real store files with single fields patched.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openStore, STORE_FILE } from '../shared/store.js';
import { freeBytes, lmdbFileProblem, preallocateLockFile } from '../shared/store-file.js';

async function storeFile(dir: string): Promise<string> {
  const store = openStore(dir, { readOnly: false });
  await store.recordTokens([{ tokenId: 'a', user: 'ann', iat: 1, exp: 2 }]);
  await store.close();
  return join(dir, STORE_FILE);
}

function patched(path: string, patch: (bytes: Buffer) => void): string | undefined {
  const bytes = readFileSync(path);
  patch(bytes);
  const copy = `${path}.patched`;
  writeFileSync(copy, bytes);
  return lmdbFileProblem(copy);
}

t.test('a sound store passes', async (t) => {
  const path = await storeFile(t.testdir());
  t.equal(lmdbFileProblem(path), undefined);
});

t.test('each meta field that LMDB would refuse is found', async (t) => {
  const path = await storeFile(t.testdir());
  const pageSize = readFileSync(path).readUInt32LE(48);
  t.equal(pageSize & (pageSize - 1), 0, `the page size field is read (${pageSize})`);
  t.match(
    patched(path, (b) => b.writeUInt16LE(0, 18)),
    /not an LMDB file/,
    'page 0 is not a meta page',
  );
  t.match(
    patched(path, (b) => b.writeUInt32LE(0xdeadbeef, 24)),
    /not an LMDB file/,
    'bad magic',
  );
  t.match(
    patched(path, (b) => b.writeUInt32LE(3000, 48)),
    /impossible page size/,
    'page size not a power of two',
  );
  t.match(
    patched(path, (b) => b.writeUInt32LE(0, pageSize + 24)),
    /not an LMDB file/,
    'bad magic in the second meta page',
  );
  t.match(
    patched(path, (b) => b.writeUInt32LE(7, pageSize + 28)),
    /data format 7/,
    'second meta page of another format',
  );
  t.match(
    patched(path, (b) => {
      b.writeBigUInt64LE(1n, 152); // a committed meta
      b.writeBigUInt64LE(1_000_000n, 136); // whose main root lies past the end
    }),
    /page 1000000 is past its end/,
  );
});

t.test('the lock file is made whole, and an existing one is left alone', async (t) => {
  const dir = t.testdir({ 'existing-lock': 'in use' });
  const fresh = join(dir, 'fresh-lock');
  preallocateLockFile(fresh);
  const bytes = readFileSync(fresh);
  t.ok(bytes.length >= 8192, `${bytes.length} bytes`);
  t.ok(
    bytes.every((b) => b === 0),
    'zeros, as LMDB expects a new lock file',
  );
  t.equal(statSync(fresh).mode & 0o777, 0o600);
  t.ok(statSync(fresh).blocks * 512 >= bytes.length, 'its blocks are allocated, not sparse');
  preallocateLockFile(join(dir, 'existing-lock'));
  t.equal(readFileSync(join(dir, 'existing-lock'), 'utf8'), 'in use');
});

t.test('free space is measured', async (t) => {
  const free = freeBytes(t.testdir());
  t.ok(Number.isSafeInteger(free) && free > 0, `${free} bytes`);
});
