// The key bundle of `proxyauth sync export`: only keys in force go in (an expired or removed
// key, config.json's old secret included, never does), and parsing refuses anything that is
// not a well-formed bundle of this version.
import t from 'tap';
import type { KeyRingEntry } from '../shared/store.js';
import { keyIdHex } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import { buildBundle, parseBundle } from '../supervisor/sync-bundle.js';

const NOW = 1_800_000_000;

function entry(secret: string, extra: Partial<KeyRingEntry>): KeyRingEntry {
  return {
    keyId: deriveTokenKeys(secret).keyId,
    secret,
    source: 'config',
    addedAt: NOW - 1000,
    activatedAt: null,
    retiredAt: null,
    verifyUntil: null,
    removedAt: null,
    tokenLifetime: 0,
    ...extra,
  };
}

const ACTIVE = entry('active-'.padEnd(64, 'a'), { source: 'generated', activatedAt: NOW - 10 });
const RETIRED = entry('retired-'.padEnd(64, 'r'), {
  activatedAt: NOW - 900,
  retiredAt: NOW - 10,
  verifyUntil: NOW + 590,
});
const EXPIRED = entry('expired-'.padEnd(64, 'e'), {
  activatedAt: NOW - 999,
  retiredAt: NOW - 900,
  verifyUntil: NOW - 300,
});
const REMOVED = entry('removed-'.padEnd(64, 'x'), { verifyUntil: NOW + 500, removedAt: NOW - 1 });

t.test('the bundle holds the keys in force and the token lifetime, nothing else', async (t) => {
  const bundle = buildBundle([ACTIVE, RETIRED, EXPIRED, REMOVED], 'node-a', NOW, 600);
  t.same(Object.keys(bundle).sort(), [
    'active',
    'exportedAt',
    'format',
    'keys',
    'node',
    'tokenExpirySeconds',
    'version',
  ]);
  t.equal(bundle.active, keyIdHex(ACTIVE.keyId));
  t.same(bundle.keys.map((k) => k.secret).sort(), [ACTIVE.secret, RETIRED.secret].sort());
  t.equal(bundle.tokenExpirySeconds, 600);
  t.same(parseBundle(JSON.stringify(bundle)), bundle, 'what is written parses back');
  t.throws(() => buildBundle([RETIRED], 'n', NOW, 600), { code: 'SYNC_EMPTY_RING' });
});

t.test('parse refuses what is not a bundle of this version', async (t) => {
  const good = buildBundle([ACTIVE, RETIRED], 'node-a', NOW, 600);
  const cases: [string, unknown, string][] = [
    ['not JSON', 'nope{', 'SYNC_BUNDLE_INVALID'],
    ['another version', { ...good, version: 2 }, 'SYNC_BUNDLE_VERSION'],
    ['not a bundle', { hello: 1 }, 'SYNC_BUNDLE_INVALID'],
    ['an extra field', { ...good, users: [] }, 'SYNC_BUNDLE_INVALID'],
    ['no keys', { ...good, keys: [] }, 'SYNC_BUNDLE_INVALID'],
    [
      'an id that is not its material',
      { ...good, keys: [{ ...good.keys[0]!, id: '00000000' }, good.keys[1]] },
      'SYNC_BUNDLE_INVALID',
    ],
    ['a duplicate key', { ...good, keys: [good.keys[0], good.keys[0]] }, 'SYNC_BUNDLE_INVALID'],
    ['active not among the keys', { ...good, active: 'ffffffff' }, 'SYNC_BUNDLE_INVALID'],
  ];
  for (const [name, value, code] of cases) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    t.throws(() => parseBundle(text), { code }, name);
  }
  let message = '';
  try {
    parseBundle(JSON.stringify({ ...good, keys: [{ ...good.keys[0]!, id: '00000000' }] }));
  } catch (e) {
    message = (e as Error).message;
  }
  t.match(message, /00000000/);
  t.notMatch(message, /active-a|retired-r/, 'no material in the message');
});
