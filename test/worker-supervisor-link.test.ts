import t from 'tap';
import type { EdgeMessage } from '../shared/ipc.js';
import { AskError, SupervisorLink } from '../worker/supervisor-link.js';

const change = { op: 'lift-user', user: 'u' } as const;

t.test('an ask resolves with its validated answer, by id', async (t) => {
  const sent: EdgeMessage[] = [];
  const link = new SupervisorLink((m) => {
    sent.push(m);
    return true;
  });
  const first = link.ask({ type: 'change-revocations', change }, 1000);
  const second = link.ask({ type: 'change-revocations', change }, 1000);
  const [a, b] = sent as { id: number }[];
  t.not(a?.id, b?.id, 'distinct ids');
  const yes = { changed: true, change, unconfirmed: 0 };
  const no = { changed: false, change, unconfirmed: 1 };
  t.ok(link.settle({ type: 'answer', id: b!.id, value: no }));
  t.ok(link.settle({ type: 'answer', id: a!.id, value: yes }));
  t.same(await first, yes);
  t.same(await second, no);
  t.notOk(link.settle({ type: 'answer', id: a!.id, value: yes }), 'answered once');
  t.equal(link.pending, 0);
});

t.test('errors: the supervisor code, a bad answer, a timeout, a closed channel', async (t) => {
  let last: { id: number } | undefined;
  const link = new SupervisorLink((m) => {
    last = m as { id: number };
    return true;
  });
  const refused = link.ask({ type: 'change-revocations', change }, 1000);
  link.settle({
    type: 'answer-error',
    id: last!.id,
    code: 'STORE_WRITE_FAILED',
    reason: 'disk full',
  });
  await t.rejects(refused, { code: 'STORE_WRITE_FAILED', message: 'disk full' });
  const bad = link.ask({ type: 'change-revocations', change }, 1000);
  link.settle({ type: 'answer', id: last!.id, value: { changed: 'yes', change, unconfirmed: 0 } });
  await t.rejects(bad, { code: 'ASK_BAD_ANSWER' });
  await t.rejects(link.ask({ type: 'change-revocations', change }, 20), { code: 'ASK_TIMEOUT' });
  t.equal(link.pending, 0, 'a timed-out ask is forgotten');
  const closed = new SupervisorLink(() => false);
  const err = await closed.ask({ type: 'change-revocations', change }, 1000).catch((e) => e);
  t.ok(err instanceof AskError);
  t.equal(err.code, 'ASK_CHANNEL_CLOSED');
});
