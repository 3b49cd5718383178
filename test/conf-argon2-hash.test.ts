import t from 'tap';
import {
  ARGON2_MAX_MEMORY_KIB,
  ARGON2_MAX_MEMORY_PASSES_KIB,
  ARGON2_MAX_PARALLELISM,
  Argon2HashError,
  argon2Cost,
} from '../conf/argon2-hash.js';
import { isArgon2Hash } from '../conf/is-argon2-hash.js';
import { ARGON2_OPTIONS, hashPassword, verifyPassword } from '../crypto-pool/password.js';
import { CodedError } from '../shared/coded-error.js';

const SALT_HASH = '$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA';

t.test('argon2Cost: the m, t, p of a hash the verifier uses', async (t) => {
  const hash = await hashPassword('pw');
  t.same(argon2Cost(hash), {
    memoryCost: ARGON2_OPTIONS.memoryCost,
    timeCost: ARGON2_OPTIONS.timeCost,
    parallelism: ARGON2_OPTIONS.parallelism,
  });
  const custom = await hashPassword('pw', { memoryCost: 4096, timeCost: 3, parallelism: 2 });
  t.same(argon2Cost(custom), { memoryCost: 4096, timeCost: 3, parallelism: 2 });
  t.ok(await verifyPassword(custom, 'pw'), 'a hash argon2Cost accepts verifies');
  t.same(argon2Cost(`$argon2i$v=19$t=7,p=3,m=65536${SALT_HASH}`), {
    memoryCost: 65_536,
    timeCost: 7,
    parallelism: 3,
  });
});

t.test('argon2Cost: malformed hashes throw ARGON2_HASH_MALFORMED', async (t) => {
  for (const hash of [
    '$argon2id$v=19$garbage',
    '',
    'plain',
    `$argon2id$v=19$m=19456,t=2${SALT_HASH}`,
  ]) {
    const error = t.throws(() => argon2Cost(hash), JSON.stringify(hash));
    t.ok(error instanceof Argon2HashError && error instanceof CodedError, 'a coded error');
    t.match(error, { code: 'ARGON2_HASH_MALFORMED' }, JSON.stringify(hash));
  }
});

t.test(
  'argon2Cost: each ceiling is inclusive, one above it is ARGON2_HASH_TOO_COSTLY',
  async (t) => {
    const hash = (m: number, tc: number, p: number) =>
      `$argon2id$v=19$m=${m},t=${tc},p=${p}${SALT_HASH}`;
    const maxT = ARGON2_MAX_MEMORY_PASSES_KIB / ARGON2_MAX_MEMORY_KIB;
    t.same(argon2Cost(hash(ARGON2_MAX_MEMORY_KIB, maxT, ARGON2_MAX_PARALLELISM)), {
      memoryCost: ARGON2_MAX_MEMORY_KIB,
      timeCost: maxT,
      parallelism: ARGON2_MAX_PARALLELISM,
    });
    for (const [m, tc, p] of [
      [ARGON2_MAX_MEMORY_KIB + 1, 1, 1],
      [ARGON2_MAX_MEMORY_KIB, maxT + 1, 1],
      [19_456, Math.floor(ARGON2_MAX_MEMORY_PASSES_KIB / 19_456) + 1, 1],
      [19_456, 2, ARGON2_MAX_PARALLELISM + 1],
    ] as const) {
      t.throws(
        () => argon2Cost(hash(m, tc, p)),
        { code: 'ARGON2_HASH_TOO_COSTLY' },
        `m=${m},t=${tc},p=${p}`,
      );
    }
    t.equal(ARGON2_MAX_MEMORY_KIB, 1024 * 1024, '1 GiB in KiB');
  },
);

t.test('isArgon2Hash: the $argon2 prefix decides hash or plaintext', async (t) => {
  t.ok(isArgon2Hash('$argon2id$v=19$garbage'));
  t.ok(isArgon2Hash('$argon2x$'));
  t.notOk(isArgon2Hash('$2b$10$abc'));
  t.notOk(isArgon2Hash('argon2id'));
  t.notOk(isArgon2Hash(' $argon2id$'));
});
