import t from 'tap';
import { bearerToken } from '../worker/steps/credential.js';

/*
 * bearerToken parses `Bearer <token>` by hand (worker/steps/credential.ts): it must answer
 * exactly what the regex it replaced answered, for every input.
 */
/** A value as a TAP-safe name: non-printable-ASCII chars as \\uXXXX (a raw U+2028 ends a TAP line). */
const shown = (value: string | undefined): string =>
  value === undefined
    ? 'undefined'
    : [...value]
        .map((c) =>
          c >= ' ' && c <= '~' ? c : `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`,
        )
        .join('');

function reference(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^bearer[ \t]+/i.exec(value);
  if (!m) return undefined;
  const token = value.slice(m[0].length).trim();
  return token.length > 0 ? token : undefined;
}

t.test('the same answers as /^bearer[ \\t]+/i for crafted inputs', async (t) => {
  const token = 'AfDrmMlzb_zxAyBl-WTgLGk';
  const inputs: (string | undefined)[] = [undefined, '', 'bearer', 'Bearer', 'bearer ', 'bearer\t'];
  for (const scheme of [
    'bearer',
    'Bearer',
    'BEARER',
    'bEaReR',
    'bearex',
    'bear',
    'bearerr',
    'xbearer',
    ' bearer',
    'beare\u0072',
  ]) {
    for (const gap of [
      '',
      ' ',
      '\t',
      '  \t ',
      '\u00a0',
      '\n',
      '\r',
      '\v',
      '\f',
      ' \u00a0',
      '\u2028',
      '\u3000 ',
    ]) {
      for (const rest of [
        token,
        `${token} `,
        ` ${token}`,
        `${token}\t`,
        '',
        ' ',
        `a b`,
        `\u00a0${token}\u00a0`,
        '\u2028',
        `${token}\r\n`,
      ]) {
        inputs.push(`${scheme}${gap}${rest}`);
      }
    }
  }
  // The scheme's letters with each other case-related byte: only A-Z fold.
  for (let i = 0; i < 6; i++) {
    for (let c = 0; c < 0x180; c++) {
      inputs.push(
        `${'bearer'.slice(0, i)}${String.fromCharCode(c)}${'bearer'.slice(i + 1)} ${token}`,
      );
    }
  }
  let accepted = 0;
  for (const value of inputs) {
    const expected = reference(value);
    if (expected !== undefined) accepted++;
    t.equal(bearerToken(value), expected, shown(value));
  }
  t.ok(accepted > 100, `${accepted} inputs carry a token`);
});

t.test('random inputs over a small alphabet agree with the regex', async (t) => {
  const alphabet = [
    'b',
    'B',
    'e',
    'E',
    'a',
    'A',
    'r',
    'R',
    ' ',
    '\t',
    'x',
    '\u00a0',
    '\r',
    '"',
    ',',
  ];
  let seed = 42;
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  let mismatches = 0;
  for (let n = 0; n < 50_000; n++) {
    let value = next() % 3 === 0 ? 'bearer' : next() % 2 === 0 ? 'Bearer ' : '';
    const length = next() % 12;
    for (let i = 0; i < length; i++) value += alphabet[next() % alphabet.length];
    if (bearerToken(value) !== reference(value)) {
      mismatches++;
      t.fail(shown(value));
    }
  }
  t.equal(mismatches, 0, '50,000 random values');
});
