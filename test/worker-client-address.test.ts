import t from 'tap';
import { compileIpMatcher } from '../shared/ip-match.js';
import {
  forwardedForValues,
  MAX_HOPS,
  nodeAddress,
  resolveClientAddress,
} from '../worker/client-address.js';

// 10.0.0.0/8 and 2001:db8:ffff::/48 are our proxies; everything else is a client.
const trusted = compileIpMatcher(['10.0.0.0/8', '2001:db8:ffff::/48']);
const PROXY = '10.0.0.1';

function resolve(headers: string[], peer = PROXY) {
  return resolveClientAddress(peer, headers, trusted);
}

const xff = (...values: string[]) => values.flatMap((v) => ['x-forwarded-for', v]);
const fwd = (...values: string[]) => values.flatMap((v) => ['forwarded', v]);

t.test('an untrusted peer is the client, whatever it says', async (t) => {
  for (const headers of [
    xff('10.9.8.7'),
    xff('6.6.6.6, 10.0.0.2'),
    fwd('for=6.6.6.6'),
    ['x-real-ip', '6.6.6.6', 'true-client-ip', '6.6.6.6'],
    [],
  ]) {
    t.same(resolve(headers, '203.0.113.9'), { ip: '203.0.113.9', forwardedFor: '203.0.113.9' });
  }
  t.same(resolve(xff('6.6.6.6'), '2001:db8::5'), {
    ip: '2001:db8::5',
    forwardedFor: '2001:db8::5',
  });
});

t.test('a trusted peer without forwarding headers is the client', async (t) => {
  t.same(resolve([]), { ip: PROXY, forwardedFor: PROXY });
  t.same(resolve(['x-real-ip', '6.6.6.6', 'x-client-ip', '6.6.6.6']), {
    ip: PROXY,
    forwardedFor: PROXY,
  });
  t.same(resolve(xff('', ' , ')), { ip: PROXY, forwardedFor: PROXY }, 'empty values: no entry');
});

t.test('X-Forwarded-For read right to left, trusted hops skipped', async (t) => {
  const cases: [string[], string][] = [
    [xff('198.51.100.7'), '198.51.100.7'],
    [xff('198.51.100.7, 10.0.0.2'), '198.51.100.7'],
    [xff('6.6.6.6, 198.51.100.7, 10.0.0.2'), '198.51.100.7'],
    [xff('6.6.6.6,198.51.100.7,10.0.0.2,10.1.1.1'), '198.51.100.7'],
    [xff('  198.51.100.7  ,\t10.0.0.2 '), '198.51.100.7'],
    [xff('198.51.100.7,,10.0.0.2,'), '198.51.100.7'],
    [xff('6.6.6.6, 2001:db8::7, 2001:db8:ffff::1'), '2001:db8::7'],
  ];
  for (const [headers, ip] of cases) t.equal(resolve(headers).ip, ip, headers.join(' | '));
});

t.test('X-Forwarded-For lines are one list, in order', async (t) => {
  t.equal(resolve(xff('6.6.6.6', '198.51.100.7', '10.0.0.2')).ip, '198.51.100.7');
  t.equal(resolve(xff('6.6.6.6, 198.51.100.7', '10.0.0.2')).ip, '198.51.100.7');
  t.equal(
    resolve(['x-forwarded-for', '198.51.100.7', 'accept', '*/*', 'x-forwarded-for', '10.0.0.2']).ip,
    '198.51.100.7',
  );
  t.equal(
    resolve(xff('10.0.0.2', '198.51.100.7')).ip,
    '198.51.100.7',
    'the last line is read first',
  );
});

t.test('an invalid entry ends the walk at the last trusted hop', async (t) => {
  const cases: [string[], string][] = [
    [xff('garbage'), PROXY],
    [xff('198.51.100.7, garbage'), PROXY],
    [xff('198.51.100.7, garbage, 10.0.0.2'), '10.0.0.2'],
    [xff('198.51.100.7, 010.0.0.2'), PROXY],
    [xff('198.51.100.7:4711'), PROXY],
    [xff('[2001:db8::7]'), PROXY],
    [xff('fe80::1%eth0'), PROXY],
    [xff('unknown'), PROXY],
    [xff('198.51.100.7, 10.0.0.2/8'), PROXY],
    [xff('198.51.100.256'), PROXY],
  ];
  for (const [headers, ip] of cases) t.equal(resolve(headers).ip, ip, headers.join(' | '));
});

t.test('every entry trusted: the leftmost', async (t) => {
  t.equal(resolve(xff('10.0.0.3, 10.0.0.2')).ip, '10.0.0.3');
  t.equal(resolve(xff('2001:db8:ffff::9')).ip, '2001:db8:ffff::9');
});

t.test('addresses are normalised like the peer', async (t) => {
  const cases: [string, string][] = [
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['0000:0000:0000:0000:0000:ffff:c633:6407', '198.51.100.7'],
    ['2001:DB8:0:0:0:0:0:7', '2001:db8::7'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
  ];
  for (const [entry, ip] of cases) t.equal(resolve(xff(entry)).ip, ip, entry);
  t.equal(
    resolve(xff('198.51.100.7, ::ffff:10.0.0.2')).ip,
    '198.51.100.7',
    'a trusted hop written IPv4-mapped is still trusted',
  );
  t.equal(resolve(xff('::ffff:10.0.0.2')).ip, '10.0.0.2', 'all trusted, normalised too');
});

t.test(`at most ${MAX_HOPS} entries are examined`, async (t) => {
  const hops = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const within = ['198.51.100.7', ...hops(MAX_HOPS - 1)].join(', ');
  t.equal(
    resolve(xff(within)).ip,
    '198.51.100.7',
    `the client at entry ${MAX_HOPS} from the right`,
  );
  const past = ['198.51.100.7', ...hops(MAX_HOPS)].join(', ');
  t.equal(resolve(xff(past)).ip, '10.0.0.0', 'past the limit: the last trusted hop examined');
  const huge = [...Array(20_000).fill('198.51.100.7'), ...hops(MAX_HOPS)].join(',');
  t.equal(resolve(xff(huge)).ip, '10.0.0.0');
});

t.test('upstream X-Forwarded-For: the received chain, trimmed, and the peer', async (t) => {
  t.equal(resolve(xff('198.51.100.7')).forwardedFor, '198.51.100.7, 10.0.0.1');
  t.equal(
    resolve(xff(' 6.6.6.6 ,198.51.100.7', ' 10.0.0.2,')).forwardedFor,
    '6.6.6.6, 198.51.100.7, 10.0.0.2, 10.0.0.1',
  );
  t.equal(
    resolve(xff('garbage, 10.0.0.2')).forwardedFor,
    'garbage, 10.0.0.2, 10.0.0.1',
    'as received, whatever the walk made of it',
  );
});

t.test('Forwarded, read when there is no X-Forwarded-For', async (t) => {
  const cases: [string[], string][] = [
    [fwd('for=198.51.100.7'), '198.51.100.7'],
    [fwd('For=198.51.100.7;proto=https;by=10.0.0.2'), '198.51.100.7'],
    [fwd('proto=https;FOR="198.51.100.7"'), '198.51.100.7'],
    [fwd('for=6.6.6.6, for=198.51.100.7, for=10.0.0.2'), '198.51.100.7'],
    [fwd('for=6.6.6.6', 'for=198.51.100.7', 'for=10.0.0.2'), '198.51.100.7'],
    [fwd('for="198.51.100.7:4711"'), '198.51.100.7'],
    [fwd('for=198.51.100.7:4711'), '198.51.100.7'],
    [fwd('for="198.51.100.7:_port"'), '198.51.100.7'],
    [fwd('for="[2001:db8::7]"'), '2001:db8::7'],
    [fwd('for="[2001:db8::7]:4711"'), '2001:db8::7'],
    [fwd('for="[::ffff:198.51.100.7]"'), '198.51.100.7'],
    [fwd('for="\\198.51.100.7"'), '198.51.100.7'],
    [fwd('for=198.51.100.7 ; proto=http , ,for=10.0.0.2'), '198.51.100.7'],
    [fwd('for=10.0.0.3, for=10.0.0.2'), '10.0.0.3'],
    [fwd('for=[2001:db8::7]'), '2001:db8::7'],
    [fwd(';for=198.51.100.7;;proto=https;'), '198.51.100.7'],
  ];
  for (const [headers, ip] of cases) t.equal(resolve(headers).ip, ip, headers.join(' | '));
  t.equal(
    resolve([...fwd('for=6.6.6.6'), ...xff('198.51.100.7')]).ip,
    '198.51.100.7',
    'X-Forwarded-For wins',
  );
  t.equal(resolve([...fwd('for=198.51.100.7'), ...xff(' , ')]).ip, '198.51.100.7', 'empty XFF');
});

t.test('Forwarded: unknown, obfuscated or unreadable ends the walk', async (t) => {
  const cases: [string[], string][] = [
    [fwd('for=unknown'), PROXY],
    [fwd('for=198.51.100.7, for=unknown'), PROXY],
    [fwd('for=198.51.100.7, for=UNKNOWN, for=10.0.0.2'), '10.0.0.2'],
    [fwd('for=198.51.100.7, for=_hidden, for=10.0.0.2'), '10.0.0.2'],
    [fwd('for="_gazonk"'), PROXY],
    [fwd('for=198.51.100.7, proto=https'), PROXY],
    [fwd('for=198.51.100.7;for=6.6.6.6'), PROXY],
    [fwd('for="2001:db8::7"'), PROXY],
    [fwd('for="[198.51.100.7]"'), PROXY],
    [fwd('for="[2001:db8::7"'), PROXY],
    [fwd('for="198.51.100.7:port"'), PROXY],
    [fwd('for="198.51.100.7:123456"'), PROXY],
    [fwd('for='), PROXY],
    [fwd('for'), PROXY],
    [fwd('for =198.51.100.7'), PROXY],
    [fwd('for=198.51.100.7 junk, for=10.0.0.2'), '10.0.0.2'],
    [fwd('for="6.6.6.6, for=10.0.0.2'), PROXY],
    [fwd('for="6.6.6.6', 'for=198.51.100.7'), '198.51.100.7'],
  ];
  for (const [headers, ip] of cases) t.equal(resolve(headers).ip, ip, headers.join(' | '));
});

t.test('Forwarded: upstream gets the addresses read, client first, and the peer', async (t) => {
  t.equal(
    resolve(fwd('for=6.6.6.6, for="198.51.100.7:1", for="[2001:db8:ffff::2]"')).forwardedFor,
    '198.51.100.7, 2001:db8:ffff::2, 10.0.0.1',
  );
  t.equal(resolve(fwd('for=unknown')).forwardedFor, '10.0.0.1');
  t.equal(resolve(fwd('proto=https')).forwardedFor, '10.0.0.1');
});

t.test('Forwarded parsing: one value per element, lines apart', async (t) => {
  t.same(forwardedForValues(fwd('for=a;by=b, by=c, for="d\\"e"', 'for="x', 'for=y')), [
    'a',
    null,
    'd"e',
    null,
    'y',
  ]);
  t.same(forwardedForValues(['accept', 'for=a']), []);
  t.same(
    forwardedForValues(fwd('for=a junk"q\\",r", for=b')),
    [null, 'b'],
    'after a syntax error, the next comma outside quotes (quoted-pairs skipped) ends the element',
  );
  t.same(forwardedForValues(fwd('', ' , ,')), []);
});

t.test('nodeAddress: addresses only, ports dropped', async (t) => {
  const cases: [string | null, string | null][] = [
    ['192.0.2.43', '192.0.2.43'],
    ['192.0.2.43:47011', '192.0.2.43'],
    ['[2001:db8:cafe::17]:4711', '2001:db8:cafe::17'],
    ['[2001:db8:cafe::17]', '2001:db8:cafe::17'],
    ['[2001:db8:cafe::17]x', null],
    ['unknown', null],
    ['_hidden', null],
    ['', null],
    [null, null],
  ];
  for (const [node, address] of cases) t.equal(nodeAddress(node), address, String(node));
});
