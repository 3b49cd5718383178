import t from 'tap';
import { type EdgeMessage, MAX_BATCHED_EVENTS } from '../shared/ipc.js';
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

const result = (ticket: number) => ({ type: 'login-result', ticket, outcome: 'success' }) as const;
const issued = {
  type: 'token-issued',
  token: { tokenId: 'AAAAAAAAAAAAAAAAAAAAAA', user: 'alice', iat: 1, exp: 2 },
} as const;

function recorder(ok = true): { sent: EdgeMessage[]; link: SupervisorLink } {
  const sent: EdgeMessage[] = [];
  return {
    sent,
    link: new SupervisorLink((m) => {
      sent.push(m);
      return ok;
    }),
  };
}

const turnEnd = () => new Promise((resolve) => setImmediate(resolve));

t.test('events of one turn leave together at its end, in order', async (t) => {
  const { sent, link } = recorder();
  link.notify(result(1));
  await Promise.resolve();
  link.notify(issued); // a later microtask of the same turn, as a login's token
  t.equal(sent.length, 0, 'nothing is written during the turn');
  t.equal(link.queued, 2);
  await turnEnd();
  t.same(sent, [{ type: 'events', events: [result(1), issued] }]);
  t.equal(link.queued, 0);
});

t.test('an event alone leaves as itself, one message per turn', async (t) => {
  const { sent, link } = recorder();
  link.notify(result(1));
  await turnEnd();
  link.notify(result(2));
  await turnEnd();
  t.same(sent, [result(1), result(2)]);
});

t.test('an ask sends the events queued before it first', async (t) => {
  const { sent, link } = recorder();
  link.notify(result(1));
  link.notify(result(2));
  const ask = link.ask({ type: 'change-revocations', change }, 1000);
  t.same(
    sent.map((m) => m.type),
    ['events', 'change-revocations'],
  );
  await turnEnd();
  t.equal(sent.length, 2, 'the end of the turn has nothing left to send');
  link.settle({
    type: 'answer',
    id: (sent[1] as { id: number }).id,
    value: { changed: true, change, unconfirmed: 0 },
  });
  await ask;
});

t.test('flush sends now; a full batch leaves at once; a closed channel says so', async (t) => {
  const { sent, link } = recorder();
  link.notify(result(1));
  t.ok(link.flush());
  t.same(sent, [result(1)]);
  t.ok(link.flush(), 'nothing queued: nothing sent');
  t.equal(sent.length, 1);
  for (let i = 1; i <= MAX_BATCHED_EVENTS + 1; i++) link.notify(result(i));
  t.equal(sent.length, 2, `${MAX_BATCHED_EVENTS} queued events are sent without waiting`);
  const batch = sent[1] as { type: string; events: unknown[] };
  t.equal(batch.type, 'events');
  t.equal(batch.events.length, MAX_BATCHED_EVENTS);
  t.equal(link.queued, 1);
  await turnEnd();
  t.same(sent[2], result(MAX_BATCHED_EVENTS + 1));
  const closed = recorder(false);
  closed.link.notify(result(1));
  t.notOk(closed.link.flush(), 'false: the events are lost with the channel');
  t.equal(closed.link.queued, 0);
});
