import t from 'tap';
import { clientIp } from '../worker/uws-io.js';

t.test('IPv4 clients of a dual-stack listener are shown as dotted quads', async (t) => {
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:c0a8:01fe'), '192.168.1.254');
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:ffff:ffff'), '255.255.255.255');
});

t.test('IPv6 in RFC 5952 form; IPv4 as uWS wrote it', async (t) => {
  t.equal(clientIp('127.0.0.1'), '127.0.0.1');
  const cases: [string, string][] = [
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['2001:0db8:0000:0000:0000:ffff:7f00:0001', '2001:db8::ffff:7f00:1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:0db8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2:3:4:5:6'],
    ['2001:0db8:0000:0001:0002:0003:0004:0005', '2001:db8:0:1:2:3:4:5'],
    ['fe80:0000:0000:0000:0000:0000:0000:0000', 'fe80::'],
    ['2001:0DB8:0000:0000:0000:0000:0000:00AB', '2001:db8::ab'],
  ];
  for (const [full, short] of cases) t.equal(clientIp(full), short, full);
});
