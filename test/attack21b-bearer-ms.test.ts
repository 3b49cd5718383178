import t from 'tap';
import { hundredths } from '../shared/access-log.js';
import { bearerToken } from '../worker/steps/credential.js';
import { seededRandom } from './helpers/seeded-random.js';

/*
 * 039f172's hand-written parsers against what they replaced, over inputs the unit tests do not
 * list: Unicode case folds of the scheme's letters (U+017F long s, U+212A Kelvin, dotted and
 * dotless i), non-BMP chars, Unicode blanks that trim() removes but the scheme separator does
 * not allow, long values; and every ms the edge can log (Math.round(x * 100) / 100) up to 1e15.
 */

const OLD_BEARER = /^bearer[ \t]+/i;

function oldBearerToken(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = OLD_BEARER.exec(value);
  if (!m) return undefined;
  const token = value.slice(m[0].length).trim();
  return token.length > 0 ? token : undefined;
}

const PIECES = [
  ...'bBeEaArR',
  ' ',
  '\t',
  '\n',
  '\r',
  '\v',
  '\f',
  '\0',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\u3000',
  '\u017f',
  '\u212a',
  '\u0130',
  '\u0131',
  '\ud83d\ude00',
  '\ud83d',
  'x',
  '=',
  '.',
  'bearer',
  'BEARER',
];

t.test('bearerToken: the old RegExp answer for every generated value', async (t) => {
  const next = seededRandom(21);
  let differing = 0;
  for (let i = 0; i < 200_000; i++) {
    let value = next() < 0.6 ? 'bearer' : '';
    const n = Math.floor(next() * 10);
    for (let k = 0; k < n; k++) value += PIECES[Math.floor(next() * PIECES.length)];
    if (bearerToken(value) !== oldBearerToken(value) && differing++ < 5) {
      t.fail(`differs on ${JSON.stringify(value)}`);
    }
  }
  const long = `Bearer \t ${'x'.repeat(100_000)}\ud83d\ude00 `;
  t.equal(bearerToken(long), oldBearerToken(long));
  t.equal(differing, 0);
});

t.test('hundredths: String(ms) for every value the edge can log', async (t) => {
  const next = seededRandom(2121);
  let differing = 0;
  for (let i = 0; i < 500_000; i++) {
    const x = next() * 10 ** Math.floor(next() * 16);
    const ms = Math.round(x * 100) / 100;
    if (hundredths(ms) !== String(ms) && differing++ < 5) t.fail(`differs on ${ms}`);
  }
  for (let h = 0; h < 200_000; h++) {
    const ms = Math.round((h / 100) * 100) / 100;
    if (hundredths(ms) !== String(ms) && differing++ < 5) t.fail(`differs on ${ms}`);
  }
  t.equal(differing, 0);
});
