// The mapping from errno names/numbers and LMDB return codes to store errors. Most of these
// are produced for real in shared-store-open.test.ts; this covers the ones that cannot be on
// this machine: MDB_MAP_FULL (lmdb-js grows the map by itself, so a map size limit is never
// hit), MDB_CORRUPTED / MDB_PAGE_NOTFOUND / MDB_PANIC (a store damaged past its meta pages: a
// read of it may as well end in SIGBUS), EDQUOT (no quotas here), MDB_READERS_FULL.
import { constants } from 'node:os';
import t from 'tap';
import { CodedError } from '../shared/coded-error.js';
import { openError, StoreError, storeFailure, writeError } from '../shared/store-error.js';

const { errno } = constants;

t.test('errno names (node:fs) and numbers (lmdb-js) map to the same failure', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['EACCES', 'STORE_ACCESS_DENIED', /^permission denied$/],
    ['EPERM', 'STORE_ACCESS_DENIED', /not permitted/],
    ['EROFS', 'STORE_READ_ONLY_FS', /read-only/],
    ['ENOSPC', 'STORE_FULL', /no space left/],
    ['EDQUOT', 'STORE_FULL', /quota/],
    ['EFBIG', 'STORE_FULL', /file size limit/],
    ['ENOENT', 'STORE_OPEN_FAILED', /no such file/],
    ['ENOTDIR', 'STORE_OPEN_FAILED', /not a directory/],
    ['EIO', 'STORE_OPEN_FAILED', /input\/output error/],
  ];
  for (const [name, code, cause] of cases) {
    const byName = storeFailure(Object.assign(new Error('x'), { code: name }));
    t.equal(byName.code, code, name);
    t.match(byName.cause, cause, name);
    const number = errno[name as keyof typeof errno];
    t.same(storeFailure({ code: number }), byName, `${name} as ${number}`);
  }
});

t.test('LMDB return codes', async (t) => {
  const cases: [number, string, RegExp][] = [
    [-30792, 'STORE_FULL', /map size limit/], // MDB_MAP_FULL
    [-30793, 'STORE_CORRUPT', /not an LMDB file/], // MDB_INVALID
    [-30796, 'STORE_CORRUPT', /damaged/], // MDB_CORRUPTED
    [-30797, 'STORE_CORRUPT', /damaged/], // MDB_PAGE_NOTFOUND
    [-30795, 'STORE_CORRUPT', /fatal/], // MDB_PANIC
    [-30794, 'STORE_CORRUPT', /incompatible LMDB version/], // MDB_VERSION_MISMATCH
    [-30790, 'STORE_OPEN_FAILED', /too many processes/], // MDB_READERS_FULL
  ];
  for (const [code, expected, cause] of cases) {
    const failure = storeFailure(Object.assign(new Error('lmdb'), { code }));
    t.equal(failure.code, expected, String(code));
    t.match(failure.cause, cause, String(code));
  }
});

t.test('anything else keeps its own message', async (t) => {
  t.same(storeFailure(new Error('Database not found')), {
    code: 'STORE_OPEN_FAILED',
    cause: 'Database not found',
  });
  t.same(storeFailure('a string'), { code: 'STORE_OPEN_FAILED', cause: 'a string' });
  t.same(storeFailure({ code: 99_999 }).code, 'STORE_OPEN_FAILED');
});

t.test('an open error names the file, the cause and what to do', async (t) => {
  const cause = new Error('EACCES');
  const err = openError('/data/proxyauth.mdb', storeFailure({ code: 'EACCES' }), cause);
  t.ok(err instanceof StoreError);
  t.ok(err instanceof CodedError);
  t.equal(err.name, 'StoreError');
  t.equal(err.code, 'STORE_ACCESS_DENIED');
  t.equal(
    err.message,
    'cannot open the store at /data/proxyauth.mdb: permission denied ' +
      '(check the owner and mode of the data dir and of the files in it)',
  );
  t.equal(err.cause, cause);
});

t.test('a write error digs the cause out of lmdb-js commitError', async (t) => {
  const cause = Object.assign(new Error('No space left on device'), { code: errno.ENOSPC });
  const commitError = Promise.reject(cause);
  const failed = Object.assign(new Error('Commit failed (see commitError for details)'), {
    commitError,
  });
  const err = await writeError('/data/proxyauth.mdb', failed);
  t.equal(err.code, 'STORE_WRITE_FAILED');
  t.equal(
    err.message,
    'cannot write to the store at /data/proxyauth.mdb: no space left on the device',
  );
  t.equal(err.cause, cause);
  const plain = await writeError('/data/proxyauth.mdb', new Error('boom'));
  t.equal(plain.message, 'cannot write to the store at /data/proxyauth.mdb: boom');
});
