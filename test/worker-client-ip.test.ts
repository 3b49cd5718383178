import t from 'tap';
import { clientIp, peerAddress } from '../worker/uws-io.js';

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

t.test('peerAddress: uWS binary addresses, the last one remembered', async (t) => {
  const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([a, b, c, d]).buffer;
  const v6 = (...groups: number[]) => {
    const bytes = new Uint8Array(16);
    groups.forEach((g, i) => {
      bytes[i * 2] = g >> 8;
      bytes[i * 2 + 1] = g & 0xff;
    });
    return bytes.buffer;
  };
  const mapped = (a: number, b: number, c: number, d: number) =>
    v6(0, 0, 0, 0, 0, 0xffff, (a << 8) | b, (c << 8) | d);
  // Alternating, repeated and near-identical addresses: each is its own text, never the last
  // one's (the cache compares every byte and the length).
  const sequence: [ArrayBuffer, string][] = [
    [mapped(127, 0, 0, 1), '127.0.0.1'],
    [mapped(127, 0, 0, 1), '127.0.0.1'],
    [mapped(127, 0, 0, 2), '127.0.0.2'],
    [mapped(128, 0, 0, 1), '128.0.0.1'],
    [v4(127, 0, 0, 1), '127.0.0.1'],
    [v4(127, 0, 0, 2), '127.0.0.2'],
    [v6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [v6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [v6(0, 0, 0, 0, 0, 0, 0, 0x101), '::101'],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0xffff, 0x7f00, 1), '2001:db8::ffff:7f00:1'],
    [mapped(127, 0, 0, 1), '127.0.0.1'],
    [v6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 'fe80::'],
    [new ArrayBuffer(0), ''],
    [v4(10, 1, 2, 3), '10.1.2.3'],
    [new Uint8Array([10, 1, 2]).buffer, ''],
    [v4(10, 1, 2, 3), '10.1.2.3'],
  ];
  for (const [raw, text] of sequence) t.equal(peerAddress(raw), text, text || '(no address)');
  // Every IPv4 last byte after its neighbour: a cache that compared too few bytes would repeat.
  for (let i = 0; i < 256; i++) t.equal(peerAddress(mapped(192, 168, 1, i)), `192.168.1.${i}`);
  for (let i = 0; i < 256; i++) t.equal(peerAddress(mapped(i, 168, 1, 7)), `${i}.168.1.7`);
});
