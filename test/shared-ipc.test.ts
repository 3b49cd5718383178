import t from 'tap';
import {
  type ConfigSnapshot,
  describeMessage,
  parseAnswerValue,
  parseEdgeMessage,
  parseReplyValue,
  parseSupervisorMessage,
} from '../shared/ipc.js';

const snapshot: ConfigSnapshot = {
  generation: 3,
  configDir: '/c',
  dataDir: '/d',
  files: { config: '/c/config.json', routes: '/c/routes.yml' },
  raw: { config: { any: 'thing' }, routes: null },
  keyRing: { active: 'k'.repeat(64), verifyOnly: [] },
};

t.test('every supervisor message of the union parses as sent', async (t) => {
  const valid = [
    { type: 'start', id: 1, snapshot, tls: null },
    { type: 'start', id: 2, snapshot, tls: { certFile: '/a', keyFile: '/b', fingerprint: 'f' } },
    { type: 'listen', id: 3, host: '::', port: 8080 },
    { type: 'apply-config', id: 4, snapshot },
    { type: 'drain', timeoutMs: 10_000 },
  ];
  for (const message of valid)
    t.same(parseSupervisorMessage(message), { ok: true, value: message });
});

t.test('malformed supervisor messages are refused with a reason', async (t) => {
  const invalid: [unknown, RegExp][] = [
    [{ type: 'config', snapshot }, /type/],
    [{ type: 'start', snapshot, tls: null }, /id/],
    [{ type: 'start', id: 1, snapshot, tls: null, extra: 1 }, /extra/],
    [{ type: 'listen', id: 1, host: '127.0.0.1', port: 70_000 }, /port/],
    [{ type: 'apply-config', id: -1, snapshot }, /id/],
    [{ type: 'apply-config', id: 1, snapshot: { ...snapshot, generation: 'x' } }, /generation/],
    [{ type: 'apply-config', id: 1, snapshot: { ...snapshot, keyRing: undefined } }, /keyRing/],
    [
      {
        type: 'apply-config',
        id: 1,
        snapshot: { ...snapshot, keyRing: { active: '', verifyOnly: [] } },
      },
      /keyRing/,
    ],
    [{ type: 'drain' }, /timeoutMs/],
    ['drain', /./],
    [null, /./],
  ];
  for (const [message, reason] of invalid) {
    const parsed = parseSupervisorMessage(message);
    t.equal(parsed.ok, false, JSON.stringify(message)?.slice(0, 60) ?? String(message));
    if (!parsed.ok) t.match(parsed.reason, reason);
  }
});

t.test('edge messages: replies, refusals and events', async (t) => {
  t.ok(parseEdgeMessage({ type: 'reply', id: 1, value: { port: 1 } }).ok);
  t.ok(parseEdgeMessage({ type: 'reply-error', id: 1, code: 'X', reason: 'y' }).ok);
  t.ok(parseEdgeMessage({ type: 'fatal', reason: 'boom' }).ok);
  t.notOk(parseEdgeMessage({ type: 'listening', generation: 1, port: 1 }).ok, 'old protocol');
  t.notOk(parseEdgeMessage({ type: 'reply', value: 1 }).ok, 'a reply without id');
  t.notOk(parseEdgeMessage({ type: 'fatal' }).ok);
});

t.test(
  'csrf-spend: a nonce of 16 base64url characters and an expiry; fresh is a boolean',
  async (t) => {
    const ask = { type: 'csrf-spend', id: 7, nonce: 'AbCd-_0123456789', exp: 1_800_000_000 };
    t.same(parseEdgeMessage(ask), { ok: true, value: ask });
    for (const bad of [
      { ...ask, nonce: 'short' },
      { ...ask, nonce: 'AbCd+/0123456789' },
      { ...ask, nonce: 'A'.repeat(17) },
      { ...ask, exp: -1 },
      { ...ask, exp: 1.5 },
      { ...ask, token: 'x' },
    ]) {
      t.notOk(parseEdgeMessage(bad).ok, JSON.stringify(bad));
    }
    t.same(parseAnswerValue('csrf-spend', { fresh: false }), { ok: true, value: { fresh: false } });
    t.notOk(parseAnswerValue('csrf-spend', { fresh: 'yes' }).ok);
    t.notOk(parseAnswerValue('csrf-spend', {}).ok);
  },
);
t.test('totp-change asks: every op parses; secrets only sealed, steps bounded', async (t) => {
  const sealed = {
    nonce: 'A'.repeat(32),
    box: 'B'.repeat(48),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    createdAt: 1_750_000_000,
  };
  const valid = [
    { op: 'enrol', user: 'alice', sealed },
    { op: 'reset', user: 'alice', sealed: { ...sealed, algorithm: 'SHA512', digits: 8 } },
    { op: 'remove', user: 'alice' },
    { op: 'consume', user: 'alice', secretId: 'A'.repeat(32), steps: [58_333_333] },
    { op: 'consume', user: 'alice', secretId: '', steps: [1, 2, 3] },
  ];
  for (const change of valid) {
    const message = { type: 'totp-change', id: 7, change };
    t.same(parseEdgeMessage(message), { ok: true, value: message }, change.op);
  }
  const invalid = [
    { op: 'enrol', user: 'alice', sealed: { ...sealed, secret: 'JBSWY3DPEHPK3PXP' } },
    { op: 'enrol', user: 'alice', sealed: { ...sealed, box: 'not base64url!' } },
    { op: 'reset', user: 'alice', sealed: { ...sealed, algorithm: 'MD5' } },
    { op: 'reset', user: 'alice', sealed: { ...sealed, digits: 9 } },
    { op: 'remove', user: '' },
    { op: 'consume', user: 'alice', secretId: '', steps: [] },
    { op: 'consume', user: 'alice', secretId: '', steps: Array(17).fill(1) },
    { op: 'consume', user: 'alice', secretId: '', steps: [-1] },
    { op: 'consume', user: 'alice', secretId: 'x/y', steps: [1] },
    { op: 'rotate', user: 'alice' },
  ];
  for (const change of invalid) {
    t.notOk(parseEdgeMessage({ type: 'totp-change', id: 7, change }).ok, JSON.stringify(change));
  }
  t.same(parseAnswerValue('totp-change', { done: true }), { ok: true, value: { done: true } });
  t.notOk(parseAnswerValue('totp-change', { done: 'yes' }).ok);
});

t.test('reply values are checked per request type', async (t) => {
  t.same(parseReplyValue('listen', { port: 8080 }), { ok: true, value: { port: 8080 } });
  t.notOk(parseReplyValue('listen', { port: 0 }).ok, 'a listening port is never 0');
  t.notOk(parseReplyValue('listen', { generation: 1 }).ok);
  t.ok(parseReplyValue('start', { generation: 1 }).ok);
  t.notOk(parseReplyValue('apply-config', { generation: '1' }).ok);
});

t.test('describeMessage never echoes more than a short type', async (t) => {
  t.equal(describeMessage({ type: 'x'.repeat(500) }).length, 64);
  t.equal(describeMessage({ type: 3 }), 'object');
  t.equal(describeMessage(undefined), 'undefined');
});
