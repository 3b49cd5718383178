import t from 'tap';
import { clientIp } from '../worker/uws-io.js';

t.test('IPv4 clients of a dual-stack listener are shown as dotted quads', async (t) => {
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:c0a8:01fe'), '192.168.1.254');
  t.equal(clientIp('0000:0000:0000:0000:0000:ffff:ffff:ffff'), '255.255.255.255');
});

t.test('everything else is left as uWS wrote it', async (t) => {
  t.equal(clientIp('127.0.0.1'), '127.0.0.1');
  t.equal(
    clientIp('0000:0000:0000:0000:0000:0000:0000:0001'),
    '0000:0000:0000:0000:0000:0000:0000:0001',
  );
  t.equal(
    clientIp('2001:0db8:0000:0000:0000:ffff:7f00:0001'),
    '2001:0db8:0000:0000:0000:ffff:7f00:0001',
  );
});
