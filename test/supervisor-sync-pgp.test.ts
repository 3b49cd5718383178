// The OpenPGP layer of sync: a passphrase message uses Argon2 and AEAD; opening maps every
// failure to a stable code, and a file asking for too much Argon2 memory is refused before any
// memory is taken.
import t from 'tap';
import { isToRecipient, open, readSealed, seal } from '../supervisor/sync-pgp.js';

t.test('passphrase: Argon2 S2K, AEAD; wrong passphrase and flipped bytes refused', async (t) => {
  const armored = await seal('{"a":1}', { passphrase: 'pw' });
  const message = await readSealed(Buffer.from(armored));
  t.notOk(isToRecipient(message));
  t.equal(await open(message, { passphrase: 'pw' }), '{"a":1}');
  await t.rejects(open(await readSealed(Buffer.from(armored)), { passphrase: 'no' }), {
    code: 'SYNC_DECRYPT_FAILED',
  });
  const binary = Buffer.from(
    armored
      .split('\n')
      .filter((l) => l && !l.startsWith('-') && !l.startsWith('='))
      .join(''),
    'base64',
  );
  t.equal(binary[7], 4, 'an Argon2 S2K (type 4) in the session key packet');
  const flipped = Buffer.from(binary);
  flipped[flipped.length - 5]! ^= 1;
  await t.rejects(open(await readSealed(flipped), { passphrase: 'pw' }), { code: 'SYNC_TAMPERED' });
  const greedy = Buffer.from(binary);
  t.equal(greedy[7 + 19], 16, '64 MiB (2^16 KiB) at export');
  greedy[7 + 19] = 19;
  await t.rejects(open(await readSealed(greedy), { passphrase: 'pw' }), {
    code: 'SYNC_DECRYPT_FAILED',
    message: /256 MiB/,
  });
  await t.rejects(readSealed(Buffer.from('junk')), { code: 'SYNC_NOT_OPENPGP' });
});
