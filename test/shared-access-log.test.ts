import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  type AccessEntry,
  AccessLog,
  hundredths,
  IsoTimestamps,
  jsonString,
  loggedPath,
  MAX_LOGGED_PATH,
} from '../shared/access-log.js';
import { TokenCodec } from '../shared/token-codec.js';

const entry = (i: number): AccessEntry => ({
  ip: '127.0.0.1',
  method: 'GET',
  path: `/api/item/${i}/"quoted"`,
  status: 200,
  ms: 1.25,
  user: 'alice',
  route: '/api',
  code: undefined,
});

t.test('lines are buffered, then flushed by the timer as valid JSON lines', async (t) => {
  const file = join(t.testdir(), 'access.log');
  const fd = openSync(file, 'a');
  t.teardown(() => closeSync(fd));
  const log = new AccessLog(fd);
  for (let i = 0; i < 300; i++) log.write(entry(i));
  t.equal(readFileSync(file, 'utf8'), '', 'nothing is written on the request path');
  await new Promise((r) => setTimeout(r, 120));
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  t.equal(lines.length, 300);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(parsed[7]?.path, '/api/item/7/"quoted"');
  t.equal(parsed[7]?.type, 'access');
  t.match(parsed[7]?.ts, /^\d{4}-\d{2}-\d{2}T/);
  t.notOk('code' in parsed[7]!, 'undefined fields are left out');
});

/** An AccessLog whose writeSync records each write instead of writing. */
async function spiedLog(t: Test): Promise<{ log: AccessLog; writes: string[] }> {
  const writes: string[] = [];
  const fs = await import('node:fs');
  const spied = await t.mockImport<typeof import('../shared/access-log.js')>(
    '../shared/access-log.js',
    {
      'node:fs': {
        ...fs,
        writeSync: (_fd: number, data: Uint8Array) => writes.push(Buffer.from(data).toString()),
      },
    },
  );
  return { log: new spied.AccessLog(99), writes };
}

t.test('whole lines go out in writes of at most 4096 bytes', async (t) => {
  const { log, writes } = await spiedLog(t);
  for (let i = 0; i < 1000; i++) log.write(entry(i));
  log.write({ ...entry(1000), path: `/${'x'.repeat(5000)}` });
  log.write(entry(1001));
  log.flush();
  t.ok(writes.length > 1, `${writes.length} writes`);
  const long = writes.filter((w) => Buffer.byteLength(w) > 4096);
  t.equal(long.length, 1, 'a line longer than PIPE_BUF goes out alone');
  t.equal(long[0]?.split('\n').length, 2, 'and holds exactly that line');
  for (const w of writes.filter((w) => !long.includes(w))) {
    t.ok(Buffer.byteLength(w) <= 4096, 'a write fits in PIPE_BUF');
    t.ok(w.endsWith('\n'), 'a write ends on a line boundary');
  }
  const lines = writes.join('').trimEnd().split('\n');
  t.equal(lines.length, 1002, 'every line written exactly once');
  for (const l of lines) JSON.parse(l);
});

t.test('a burst past the buffer bound is flushed at once', async (t) => {
  const { log, writes } = await spiedLog(t);
  for (let i = 0; i < 3000; i++) log.write(entry(i));
  t.ok(writes.length > 0, 'memory stays bounded: no waiting for the timer');
  log.flush();
});

t.test('text format (log.format text): one readable line per request', async (t) => {
  const file = join(t.testdir(), 'access.log');
  const fd = openSync(file, 'a');
  t.teardown(() => closeSync(fd));
  const log = new AccessLog(fd, 42, true);
  log.write(entry(1));
  log.write({ ...entry(2), user: undefined, route: undefined, status: 401, code: 'TOKEN_MISSING' });
  log.flush();
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  t.match(
    lines[0],
    /^\d{4}-\d\d-\d\dT[0-9:.]+Z ACCESS pid=42 127\.0\.0\.1 "GET \/api\/item\/1\/\\"quoted\\"" 200 1\.25ms user="alice" route="\/api"$/,
  );
  t.match(lines[1], / 401 1\.25ms code=TOKEN_MISSING$/);
});

t.test('loggedPath: a token in the path is never logged; long paths are cut', async (t) => {
  const codec = new TokenCodec('p'.repeat(64));
  const { token } = codec.issue('alice', 600, 1_800_000_000);
  t.equal(loggedPath(`/api/${token}/x`), '/api/<token>/x');
  t.equal(loggedPath(`/${token}`), '/<token>');
  t.equal(loggedPath(`/a/${token}${token}`), '/a/<token>', 'two tokens run together');
  t.equal(loggedPath('/api/items/42'), '/api/items/42', 'a short path as it is');
  const notToken = `/files/${'B'.repeat(200)}`;
  t.equal(loggedPath(notToken), notToken, 'a long run not starting like a token is kept');
  const long = `/x/${'a/'.repeat(600)}`;
  const cut = loggedPath(long);
  t.equal(cut.length, MAX_LOGGED_PATH + 3);
  t.ok(cut.endsWith('...'));
  // Redacted before it is cut: no part of a token survives at the cut.
  const edge = `/${'a'.repeat(MAX_LOGGED_PATH - 50)}/${token}`;
  t.notMatch(loggedPath(edge), token.slice(0, 40));
});

t.test(
  'IsoTimestamps formats exactly as toISOString, across seconds and out of range',
  async (t) => {
    const iso = new IsoTimestamps();
    const base = Date.UTC(2026, 11, 31, 23, 59, 58);
    const times = [
      0,
      1,
      999,
      1000,
      base,
      base + 5,
      base + 50,
      base + 999,
      base + 1000,
      base + 2000, // the year changes
      base + 1999,
      base + 7,
      253_402_300_799_999,
      253_402_300_800_000,
      -1,
      1.5,
    ];
    for (const ms of times) t.equal(iso.format(ms), new Date(ms).toISOString(), String(ms));
    for (let ms = base; ms < base + 2500; ms += 7) {
      if (iso.format(ms) !== new Date(ms).toISOString()) t.fail(`differs at ${ms}`);
    }
  },
);

t.test('jsonString is JSON.stringify, with a shortcut for plain ASCII', async (t) => {
  const samples = [
    '',
    'GET',
    '/api/hello',
    '/a b/~!@#$%^&*()_+-={}[]|:;<>,.?/',
    'say "hi"',
    'back\\slash',
    'tab\there',
    'line\nbreak',
    '\u0000\u001f\u007f',
    'café',
    '€',
    '\ud800 lone surrogate',
    '😀',
    '</script>',
  ];
  for (const text of samples) t.equal(jsonString(text), JSON.stringify(text), JSON.stringify(text));
  for (let c = 0; c < 0x180; c++) {
    const text = `a${String.fromCharCode(c)}b`;
    if (jsonString(text) !== JSON.stringify(text)) t.fail(`differs for char ${c}`);
  }
});

t.test(
  'IsoTimestamps fuzzed against toISOString: random, backwards, repeated, invalid',
  async (t) => {
    const iso = new IsoTimestamps();
    const ref = (ms: number): string => {
      try {
        return new Date(ms).toISOString();
      } catch (err) {
        return (err as Error).name;
      }
    };
    const got = (ms: number): string => {
      try {
        return iso.format(ms);
      } catch (err) {
        return (err as Error).name;
      }
    };
    let differ = 0;
    const check = (ms: number): void => {
      if (got(ms) !== ref(ms) && differ++ < 5) t.fail(`differs at ${ms}: ${got(ms)}`);
    };
    // A fixed xorshift: the same times on every run.
    let x = 0x9e3779b9;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const end = Date.UTC(10000, 0, 1);
    for (let i = 0; i < 20_000; i++) check(Math.floor(next() * end));
    let ms = Date.UTC(2026, 11, 31, 23, 59, 59);
    for (let i = 0; i < 5_000; i++) {
      ms += Math.floor(next() * 3000) - 1800; // drifting backwards across seconds
      check(ms);
    }
    for (const second of [0, Date.UTC(2026, 0, 1), end - 1000]) {
      // The same second again after another one: the cached prefix must not be reused.
      for (const off of [1, 1001, 2, 999, -1, 1]) check(second + off);
    }
    for (const odd of [Number.NaN, -0, -1, -1000, -8.64e15, 8.64e15, 8.64e15 + 1, 0.5, 1000.25]) {
      check(odd);
      check(odd);
    }
    for (const inf of [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) check(inf);
    t.equal(differ, 0, 'no time formatted differently');
  },
);

t.test(
  'non-ASCII in any text field is written as UTF-8, ASCII batches byte for byte',
  async (t) => {
    // flush copies an all-ASCII batch as latin1 (no UTF-8 length pass): a field that is not
    // plain ASCII anywhere in the batch must switch the whole batch back to UTF-8.
    const variants: [string, Partial<AccessEntry>][] = [
      ['method', { method: 'GÉT' }],
      ['path', { path: '/café/ü' }],
      ['user', { user: 'zoë' }],
      ['route', { route: '/日本' }],
      ['emoji path', { path: '/a/\u{1F600}' }],
      ['escaped and non-ASCII', { path: '/"q"/\u00e9\\' }],
      ['latin1-range char', { user: '\u00ff\u0080' }],
    ];
    for (const [name, fields] of variants) {
      const file = join(t.testdir(), `access-${name.replaceAll(' ', '-')}.log`);
      const fd = openSync(file, 'a');
      const log = new AccessLog(fd);
      log.write(entry(1));
      log.write({ ...entry(2), ...fields });
      log.write(entry(3));
      log.flush();
      // After a flush the next batch is judged on its own: ASCII again.
      log.write(entry(4));
      log.flush();
      closeSync(fd);
      const raw = readFileSync(file);
      const lines = raw.toString('utf8').trimEnd().split('\n');
      t.equal(lines.length, 4, name);
      const second = JSON.parse(lines[1]!) as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields))
        t.equal(second[key], value, `${name}: ${key}`);
      t.equal((JSON.parse(lines[3]!) as Record<string, unknown>).path, '/api/item/4/"quoted"');
      t.equal(
        Buffer.compare(raw, Buffer.from(raw.toString('utf8'), 'utf8')),
        0,
        `${name}: valid UTF-8`,
      );
    }
    // The text format quotes with JSON.stringify, which keeps non-ASCII: always UTF-8.
    const file = join(t.testdir(), 'access-text.log');
    const fd = openSync(file, 'a');
    const log = new AccessLog(fd, 42, true);
    log.write({ ...entry(1), user: 'zoë', path: '/café' });
    log.flush();
    closeSync(fd);
    const text = readFileSync(file, 'utf8');
    t.match(text, /"GET \/café" 200 1\.25ms user="zoë"/);
  },
);

t.test('hundredths is String() of a duration rounded to hundredths', async (t) => {
  // The access log formats `ms` from integers (shared/access-log.ts): it must print what
  // String(Math.round(x * 100) / 100) prints, for every duration, and String() otherwise.
  let checked = 0;
  const check = (ms: number) => {
    const expected = String(ms);
    if (hundredths(ms) !== expected) t.fail(`${expected}: ${hundredths(ms)}`);
    checked++;
  };
  for (let h = 0; h < 200_000; h++) check(h / 100);
  for (let h = 0; h < 200_000; h++) check(Math.round((h / 100 + 1e-9) * 100) / 100);
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  for (let n = 0; n < 200_000; n++) {
    const x = next() * 10 ** Math.floor(next() * 16);
    check(Math.round(x * 100) / 100);
    check(x);
  }
  for (const odd of [
    Number.NaN,
    -0,
    -1.5,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    0.001,
    1e21,
    2 ** 53,
    900_719_925_474.09,
    900_719_925_474.1,
    90_071_992_547_409.91,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
  ]) {
    check(odd);
  }
  t.ok(checked > 800_000, `${checked} values printed as String() prints them`);
  t.equal(hundredths(12.5), '12.5');
  t.equal(hundredths(0.05), '0.05');
  t.equal(hundredths(3), '3');
});

// The JSON line is written byte by byte (no template string): it must be exactly what
// JSON.stringify gives for the same members in the same order, whatever the fields hold.
t.test('each JSON line is JSON.stringify of its members, byte for byte', async (t) => {
  const { log, writes } = await spiedLog(t);
  const texts = [
    '/plain',
    '/with "quotes" and \\ backslash',
    '/ctl\u0001\u001f\u007f',
    '/caf\u00e9/\u20ac/\ud83d\ude00',
    '/lone\ud800surrogate',
    '',
  ];
  const entries: AccessEntry[] = [];
  for (const text of texts) {
    entries.push({ ...entry(1), path: text, method: text === '' ? 'GET' : 'PÖST', user: text });
    entries.push({
      ...entry(2),
      path: text,
      user: undefined,
      route: undefined,
      code: 'TOKEN_MISSING',
      status: 401,
      ms: 0,
    });
  }
  entries.push({ ...entry(3), status: 0, ms: 12345.67 });
  entries.push({ ...entry(4), status: 1_000_000, ms: 0.1 });
  for (const e of entries) log.write(e);
  log.flush();
  const lines = writes.join('').trimEnd().split('\n');
  t.equal(lines.length, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const ts = (JSON.parse(lines[i]!) as { ts: string }).ts;
    const expected = JSON.stringify({
      ts,
      type: 'access',
      pid: process.pid,
      ip: e.ip,
      method: e.method,
      path: e.path,
      status: e.status,
      ms: e.ms,
      user: e.user,
      route: e.route,
      code: e.code,
    });
    t.equal(lines[i], expected, `line ${i}`);
  }
});

t.test('a line too long to buffer goes out alone, whole and valid', async (t) => {
  const { log, writes } = await spiedLog(t);
  log.write(entry(1));
  // 6 bytes a char may be needed for escapes: a 50,000-char path may not fit the 256 KiB buffer.
  log.write({ ...entry(2), path: `/${'\u0001'.repeat(50_000)}` });
  log.write(entry(3));
  log.flush();
  const lines = writes.join('').trimEnd().split('\n');
  t.equal(lines.length, 3);
  const long = JSON.parse(lines[1]!) as { path: string; pid: number; ms: number };
  t.equal(long.path.length, 50_001);
  t.equal(long.pid, process.pid);
  t.equal(long.ms, 1.25);
  t.equal((JSON.parse(lines[2]!) as { path: string }).path, '/api/item/3/"quoted"', 'order kept');
});

t.test('the buffer is flushed before a line that may not fit, never mid-line', async (t) => {
  const { log, writes } = await spiedLog(t);
  const path = `/${'p'.repeat(900)}`;
  let n = 0;
  while (writes.length === 0 && n < 10_000) log.write({ ...entry(n++), path });
  t.ok(writes.length > 0, `flushed after ${n} lines without the timer`);
  log.flush();
  const text = writes.join('');
  t.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  t.equal(lines.length, n, 'every line once');
  for (const l of lines) t.equal((JSON.parse(l) as { path: string }).path, path);
});
