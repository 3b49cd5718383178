// The supervisor's TOTP changes: each carried out in the store, logged with the user and never
// with a secret; consumed steps are not logged; a failed write rejects.
import t, { type Test } from 'tap';
import type { TotpChange } from '../shared/ipc.js';
import type { LogFields, Logger } from '../shared/log.js';
import { openStore, type Store } from '../shared/store.js';
import { newTotpSecret } from '../shared/totp.js';
import { deriveTotpKey, sealTotp } from '../shared/totp-seal.js';
import { applyTotpChange } from '../supervisor/totp-changes.js';

function setup(t: Test): { store: Store; lines: string[]; log: Logger } {
  const store = openStore(t.testdir(), { readOnly: false });
  t.teardown(() => store.close());
  const lines: string[] = [];
  const record = (level: string) => (msg: string, fields?: LogFields) =>
    lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  const log = {
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
  return { store, lines, log };
}

const KEY = deriveTotpKey('k'.repeat(64));
const sealed = (user: string) => sealTotp(KEY, user, newTotpSecret(), 1_750_000_000);

t.test('enrol, consume, reset, remove: done or not, and what is logged', async (t) => {
  const { store, lines, log } = setup(t);
  const first = sealed('alice');
  t.same(await applyTotpChange(store, { op: 'enrol', user: 'alice', sealed: first }, log), {
    done: true,
  });
  t.same(
    await applyTotpChange(store, { op: 'enrol', user: 'alice', sealed: sealed('alice') }, log),
    {
      done: false,
    },
  );
  t.same(store.getTotp('alice'), first, 'the first enrolment stays');
  const consume: TotpChange = {
    op: 'consume',
    user: 'alice',
    secretId: first.nonce,
    steps: [10, 11],
  };
  t.same(await applyTotpChange(store, consume, log), { done: true });
  t.equal(store.lastTotpStep('alice', first.nonce), 10);
  t.same(await applyTotpChange(store, { ...consume, steps: [10] }, log), { done: false }, 'replay');
  const second = sealed('alice');
  t.same(await applyTotpChange(store, { op: 'reset', user: 'alice', sealed: second }, log), {
    done: true,
  });
  t.same(store.getTotp('alice'), second);
  t.same(await applyTotpChange(store, { op: 'remove', user: 'alice' }, log), { done: true });
  t.same(await applyTotpChange(store, { op: 'remove', user: 'alice' }, log), { done: false });
  t.same(lines, [
    'info totp secret enrolled {"user":"alice"}',
    'info totp secret reset {"user":"alice"}',
    'info totp secret removed {"user":"alice"}',
  ]);
  for (const line of lines) t.notMatch(line, first.box.slice(0, 12));
});

t.test('a failed write rejects', async (t) => {
  const { store, log } = setup(t);
  await store.close();
  await t.rejects(applyTotpChange(store, { op: 'remove', user: 'alice' }, log), {
    code: 'STORE_CLOSED',
  });
});
