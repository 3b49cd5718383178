import t from 'tap';
import { internName, KNOWN_REQUEST_HEADERS } from '../worker/uws-io.js';

// internName swaps uWS's fresh header-name strings for constants (worker/uws-io.ts): it must
// never change a name, only which string object holds it.

t.test('a known name comes back equal, as the one constant', async (t) => {
  for (const name of KNOWN_REQUEST_HEADERS) {
    const fresh = Buffer.from(name, 'latin1').toString('latin1');
    t.equal(internName(fresh), name);
    t.equal(internName(fresh), internName(`${fresh}`), `${name}: the same string each time`);
  }
});

t.test('any other name comes back unchanged', async (t) => {
  const others = [
    '',
    'a',
    'x-custom',
    'hosT', // uWS lower-cases names, but nothing here relies on it
    'host ',
    'authorizatio',
    'authorizationx',
    'x-forwarded-fox',
    'cookie\u0000',
    'x'.repeat(25),
    'x'.repeat(26),
    'x'.repeat(8_000),
    'accept\u00e9',
  ];
  for (const name of others) t.equal(internName(name), name, JSON.stringify(name.slice(0, 30)));
});

t.test('every name of the same length is told apart', async (t) => {
  // Each known name with one character changed, at each position, is not taken for another.
  for (const name of KNOWN_REQUEST_HEADERS) {
    for (let i = 0; i < name.length; i++) {
      const changed = `${name.slice(0, i)}${name[i] === 'z' ? 'y' : 'z'}${name.slice(i + 1)}`;
      const got = internName(changed);
      if (got !== changed) t.fail(`${changed} became ${got}`);
    }
  }
  t.pass('no near name was swapped');
});
