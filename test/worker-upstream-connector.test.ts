import t from 'tap';
import { filterInterim, interimState } from '../worker/upstream-connector.js';

const FINAL = 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello';

function state() {
  return interimState(true);
}

/** Feeds `stream` cut at `cuts` and returns what the parser would get, read by read. */
function feed(stream: string, cuts: number[]): string {
  const st = state();
  let out = '';
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    const piece = Buffer.from(stream.slice(from, cut), 'latin1');
    from = cut;
    if (!st.atAnswerStart && st.held === undefined) {
      out += piece.toString('latin1');
      continue;
    }
    const got = filterInterim(st, piece);
    if (got !== null) out += got.toString('latin1');
  }
  return out;
}

t.test('100 answers before the final one are dropped, whatever the read boundaries', async (t) => {
  const streams = [
    `HTTP/1.1 100 Continue\r\n\r\n${FINAL}`,
    `HTTP/1.0 100 Continue\r\n\r\n${FINAL}`,
    `HTTP/1.1 100 Continue\r\nx-a: 1\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n${FINAL}`,
    `HTTP/1.1 100\r\n\r\n${FINAL}`,
    `HTTP/1.1 100 Continue\n\n${FINAL}`,
    `HTTP/1.1 100 Continue\r\n\n${FINAL}`,
  ];
  for (const stream of streams) {
    for (let a = 1; a < stream.length; a += 3) {
      for (const b of [a + 1, a + 7, stream.length - 1]) {
        const cuts = b > a && b < stream.length ? [a, b] : [a];
        t.equal(feed(stream, cuts), FINAL, `${JSON.stringify(stream.slice(0, 16))} cut at ${cuts}`);
      }
    }
  }
});

t.test('interim answers other than 100 pass, and 100s after them are still dropped', async (t) => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n';
  const processing = 'HTTP/1.1 102 Processing\r\n\r\n';
  const cont = 'HTTP/1.1 100 Continue\r\n\r\n';
  const cases: [string, string][] = [
    [`${hints}${cont}${FINAL}`, `${hints}${FINAL}`],
    [`${cont}${hints}${cont}${FINAL}`, `${hints}${FINAL}`],
    [`${processing}${cont}${processing}${FINAL}`, `${processing}${processing}${FINAL}`],
    [
      'HTTP/1.1 103 Early Hints\nlink: </a>\n\nHTTP/1.1 100 Continue\n\n' + FINAL,
      'HTTP/1.1 103 Early Hints\nlink: </a>\n\n' + FINAL,
    ],
  ];
  for (const [stream, expected] of cases) {
    for (let a = 1; a < stream.length; a += 5) {
      t.equal(feed(stream, [a]), expected, `${JSON.stringify(stream.slice(0, 14))} cut at ${a}`);
    }
    t.equal(feed(stream, []), expected, 'in one read');
  }
});

t.test('final answers pass untouched, bytes and identity', async (t) => {
  for (const stream of [FINAL, 'HTTP/1.1 1000 Odd\r\n\r\n', 'garbage that is not HTTP']) {
    t.equal(feed(stream, [1]), stream, JSON.stringify(stream.slice(0, 20)));
    const st = state();
    const whole = Buffer.from(stream);
    t.equal(filterInterim(st, whole), whole, 'the same buffer, no copy');
    t.equal(st.atAnswerStart, false, 'stops looking after the first final answer');
  }
  const st = state();
  const interim = Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n');
  t.same(filterInterim(st, interim), interim, 'an interim answer alone passes');
  t.equal(st.atAnswerStart, true, 'and the final answer is still awaited');
});

t.test('a 100 only counts at the start of an answer', async (t) => {
  const st = state();
  const body = Buffer.from(`${FINAL}HTTP/1.1 100 Continue\r\n\r\n`);
  t.equal(filterInterim(st, body), body, 'bytes after the start are never looked at');
  t.equal(filterInterim(st, null), null);
});
