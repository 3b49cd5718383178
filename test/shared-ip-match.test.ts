import t from 'tap';
import {
  clientNetworkKey,
  compileIpMatcher,
  formatIpAddress,
  formatIpNetwork,
  IpEntryError,
  ipNetworksOverlap,
  parseIpAddress,
  parseIpEntry,
} from '../shared/ip-match.js';

function matches(entries: string[], ips: string[]): Record<string, boolean> {
  const match = compileIpMatcher(entries);
  return Object.fromEntries(ips.map((ip) => [ip, match(ip)]));
}

t.test('IPv4 addresses and CIDRs', async (t) => {
  t.same(
    matches(
      ['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12'],
      [
        '10.0.0.0',
        '10.255.255.255',
        '11.0.0.0',
        '9.255.255.255',
        '192.168.1.7',
        '192.168.1.8',
        '172.31.255.255',
        '172.32.0.0',
      ],
    ),
    {
      '10.0.0.0': true,
      '10.255.255.255': true,
      '11.0.0.0': false,
      '9.255.255.255': false,
      '192.168.1.7': true,
      '192.168.1.8': false,
      '172.31.255.255': true,
      '172.32.0.0': false,
    },
  );
});

t.test('prefix boundaries /0, /1, /31, /32', async (t) => {
  t.same(matches(['0.0.0.0/0'], ['0.0.0.0', '255.255.255.255', '::1', '::ffff:8.8.8.8']), {
    '0.0.0.0': true,
    '255.255.255.255': true,
    '::1': false,
    '::ffff:8.8.8.8': true,
  });
  t.same(matches(['128.0.0.0/1'], ['127.255.255.255', '128.0.0.0', '255.255.255.255']), {
    '127.255.255.255': false,
    '128.0.0.0': true,
    '255.255.255.255': true,
  });
  t.same(matches(['10.0.0.2/31'], ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']), {
    '10.0.0.1': false,
    '10.0.0.2': true,
    '10.0.0.3': true,
    '10.0.0.4': false,
  });
  t.same(matches(['255.255.255.255/32'], ['255.255.255.255', '255.255.255.254']), {
    '255.255.255.255': true,
    '255.255.255.254': false,
  });
});

t.test('IPv6 addresses and CIDRs, in every spelling', async (t) => {
  t.same(
    matches(
      ['2001:db8::/32', '::1', 'fe80::/10'],
      [
        '2001:db8::',
        '2001:DB8:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF',
        '2001:db9::',
        '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff',
        '0:0:0:0:0:0:0:1',
        '0000:0000:0000:0000:0000:0000:0000:0001',
        '::2',
        'febf:ffff::1',
        'fec0::',
      ],
    ),
    {
      '2001:db8::': true,
      '2001:DB8:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF': true,
      '2001:db9::': false,
      '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff': false,
      '0:0:0:0:0:0:0:1': true,
      '0000:0000:0000:0000:0000:0000:0000:0001': true,
      '::2': false,
      'febf:ffff::1': true,
      'fec0::': false,
    },
  );
  t.same(matches(['::/0'], ['::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1.2.3.4']), {
    '::': true,
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff': true,
    '1.2.3.4': true,
  });
  t.same(matches(['2001:db8::1/128'], ['2001:db8::1', '2001:db8::0', '2001:db8::2']), {
    '2001:db8::1': true,
    '2001:db8::0': false,
    '2001:db8::2': false,
  });
  t.same(
    matches(
      ['2001:db8:0:0:8000::/65'],
      [
        '2001:db8::7fff:ffff:ffff:ffff',
        '2001:db8::8000:0:0:0',
        '2001:db8::ffff:ffff:ffff:ffff',
        '2001:db8:0:1::',
      ],
    ),
    {
      '2001:db8::7fff:ffff:ffff:ffff': false,
      '2001:db8::8000:0:0:0': true,
      '2001:db8::ffff:ffff:ffff:ffff': true,
      '2001:db8:0:1::': false,
    },
  );
});

t.test('IPv4-mapped IPv6 and the IPv4 entries match each other', async (t) => {
  t.same(
    matches(
      ['1.2.3.0/24'],
      [
        '::ffff:1.2.3.4',
        '::FFFF:1.2.3.255',
        '0000:0000:0000:0000:0000:ffff:0102:0304',
        '0:0:0:0:0:ffff:102:3ff',
        '::ffff:1.2.4.0',
        '::1.2.3.4',
        '1::ffff:1.2.3.4',
      ],
    ),
    {
      '::ffff:1.2.3.4': true,
      '::FFFF:1.2.3.255': true,
      '0000:0000:0000:0000:0000:ffff:0102:0304': true,
      '0:0:0:0:0:ffff:102:3ff': true,
      '::ffff:1.2.4.0': false,
      '::1.2.3.4': false,
      '1::ffff:1.2.3.4': false,
    },
  );
  t.same(matches(['::ffff:127.0.0.0/104'], ['127.0.0.1', '127.255.0.1', '128.0.0.1']), {
    '127.0.0.1': true,
    '127.255.0.1': true,
    '128.0.0.1': false,
  });
  t.same(matches(['127.0.0.1'], ['0000:0000:0000:0000:0000:ffff:7f00:0001']), {
    '0000:0000:0000:0000:0000:ffff:7f00:0001': true,
  });
});

t.test('client addresses that are not addresses match nothing', async (t) => {
  const match = compileIpMatcher(['0.0.0.0/0', '::/0']);
  for (const ip of [
    '',
    ' ',
    'localhost',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.4 ',
    '[::1]',
    'fe80::1%eth0',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '::ffff:1.2.3.4.5',
    '12345::',
    'g::',
  ]) {
    t.equal(match(ip), false, JSON.stringify(ip));
  }
  t.equal(match(undefined as unknown as string), false);
  t.equal(compileIpMatcher([])('1.2.3.4'), false, 'an empty list matches nothing');
});

t.test('parseIpEntry normalizes and reports the family and prefix', async (t) => {
  const v4 = parseIpEntry(' 10.1.2.3/8 ');
  t.equal(v4.family, 4);
  t.equal(v4.prefix, 8);
  t.same([...v4.bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 0, 0, 0], 'host bits cleared');
  const v6 = parseIpEntry('2001:db8::1:2:3');
  t.equal(v6.family, 6);
  t.equal(v6.prefix, 128);
  t.same([...v6.bytes], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 3]);
});

t.test('parseIpAddress', async (t) => {
  t.same(
    [...(parseIpAddress('1.2.3.4') ?? [])],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4],
  );
  t.same(
    [...(parseIpAddress('1:2:3:4:5:6:7:8') ?? [])],
    [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8],
  );
  t.same([...(parseIpAddress('1::8') ?? [])], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
  t.same([...(parseIpAddress('::') ?? [])], new Array(16).fill(0));
  t.equal(parseIpAddress('1.2.3.4/32'), null);
});

t.test('invalid entries throw IpEntryError naming the entry', async (t) => {
  const bad = [
    '',
    'localhost',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.-1',
    '1.2.3.4/33',
    '1.2.3.4/-1',
    '1.2.3.4/',
    '1.2.3.4/08',
    '1.2.3.4/3 2',
    '/24',
    '::/129',
    '1::2::3',
    ':1::',
    '1::2:',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7::8',
    'fe80::1%eth0',
    '12345::',
    '::1.2.3.4:5',
    '1.2.3.4::',
    '::ffff:1.2.3',
    '::g',
    '[::1]',
    '1.2.3.4/24/8',
  ];
  for (const entry of bad) {
    t.throws(
      () => parseIpEntry(entry),
      { name: 'IpEntryError', code: 'INVALID_IP_ENTRY', entry },
      JSON.stringify(entry),
    );
  }
  t.throws(() => compileIpMatcher(['10.0.0.0/8', 'nope']), IpEntryError);
});

t.test('compressed forms that are valid', async (t) => {
  for (const entry of [
    '::',
    '::1',
    '1::',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    '1:2:3:4:5:6:1.2.3.4',
    '::1.2.3.4',
    '1::1.2.3.4',
    'ABCD::ef01/16',
  ]) {
    t.doesNotThrow(() => parseIpEntry(entry), entry);
  }
});

t.test('formatIpAddress writes RFC 5952 text, IPv4-mapped as IPv4', async (t) => {
  const cases: [string, string][] = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // equal runs: the first one
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['FE80::ABCD:0', 'fe80::abcd:0'],
    ['::ffff:c000:280', '192.0.2.128'],
    ['0000:0000:0000:0000:0000:ffff:0102:0304', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['1.2.3.4', '1.2.3.4'],
    ['::1.2.3.4', '::102:304'], // IPv4-compatible (deprecated) is not mapped
    ['::fffe:1.2.3.4', '::fffe:102:304'],
  ];
  for (const [input, text] of cases) {
    t.equal(formatIpAddress(parseIpAddress(input)!), text, input);
  }
  t.throws(() => formatIpAddress(new Uint8Array(4)), TypeError);
});

t.test('formatIpNetwork: the spelling the gateway keys clients by', async (t) => {
  const cases: [string, string][] = [
    ['203.0.113.7', '203.0.113.7'],
    ['203.0.113.7/32', '203.0.113.7'],
    ['203.0.113.7/24', '203.0.113.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8:1:2:aaaa::1/64', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::1/128'],
    ['::/0', '::/0'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7/120', '203.0.113.0/24'],
    ['::ffff:0:0/96', '0.0.0.0/0'],
    ['::ffff:0:0/80', '::/80'],
  ];
  for (const [input, text] of cases) {
    t.equal(formatIpNetwork(parseIpEntry(input)), text, input);
    t.equal(formatIpNetwork(parseIpEntry(text)), text, `${text} is stable`);
  }
});

t.test('clientNetworkKey: IPv4 as the address, IPv6 as its network', async (t) => {
  t.equal(clientNetworkKey('203.0.113.7', 64), '203.0.113.7');
  t.equal(clientNetworkKey('::ffff:203.0.113.7', 64), '203.0.113.7');
  t.equal(clientNetworkKey('0:0:0:0:0:ffff:cb00:7107', 64), '203.0.113.7');
  t.equal(clientNetworkKey('2001:db8:1:2:3:4:5:6', 64), '2001:db8:1:2::/64');
  t.equal(clientNetworkKey('2001:DB8:1:2::', 64), '2001:db8:1:2::/64');
  t.equal(clientNetworkKey('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6/128');
  t.equal(clientNetworkKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200::/56');
  t.equal(clientNetworkKey('2001:db8::1', 0), '::/0');
  t.equal(clientNetworkKey('nope', 64), null);
  t.equal(clientNetworkKey('1.2.3.4/32', 64), null, 'an address, not a network');
  for (const prefix of [-1, 129, 1.5, Number.NaN]) {
    t.throws(() => clientNetworkKey('::1', prefix), RangeError, String(prefix));
  }
});

t.test('ipNetworksOverlap: one holds the other, in any spelling', async (t) => {
  const cases: [string, string, boolean][] = [
    ['203.0.113.7', '203.0.113.7', true],
    ['203.0.113.7', '203.0.113.8', false],
    ['203.0.113.0/24', '203.0.113.7', true],
    ['203.0.114.0/24', '203.0.113.7', false],
    ['10.0.0.0/9', '10.127.0.1', true],
    ['10.0.0.0/9', '10.128.0.1', false],
    ['::ffff:203.0.113.7', '203.0.113.7', true],
    ['::ffff:203.0.113.0/120', '203.0.113.7', true],
    ['2001:db8:1:2::/64', '2001:db8:1:2:ffff::1', true],
    ['2001:db8:1:2::/64', '2001:db8:1:3::1', false],
    ['2001:db8:1::/48', '2001:db8:1:2::/64', true],
    ['2001:db8:2::/48', '2001:db8:1:2::/64', false],
    ['2001:DB8:1:2:0:0:0:0/64', '2001:db8:1:2::/64', true],
    ['0.0.0.0/0', '::1', false],
    ['::/0', '1.2.3.4', true],
    ['2001:db8::1/128', '2001:db8::1', true],
    ['2001:db8::1/128', '2001:db8::2', false],
  ];
  for (const [a, b, expected] of cases) {
    t.equal(ipNetworksOverlap(parseIpEntry(a), parseIpEntry(b)), expected, `${a} ~ ${b}`);
    t.equal(ipNetworksOverlap(parseIpEntry(b), parseIpEntry(a)), expected, `${b} ~ ${a}`);
  }
});
