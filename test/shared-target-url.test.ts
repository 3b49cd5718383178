import t from 'tap';
import { parseTarget, TargetUrlError, type TargetUrlErrorCode } from '../shared/target-url.js';

t.test('parseTarget splits origin, encoded path and query', async (t) => {
  t.same(parseTarget('http://127.0.0.1:8000/redoc'), {
    origin: 'http://127.0.0.1:8000',
    path: '/redoc',
    query: '',
    protocol: 'http:',
  });
  t.same(parseTarget('HTTPS://Example.COM:443/a/b/?k=v&x=1'), {
    origin: 'https://example.com',
    path: '/a/b/',
    query: 'k=v&x=1',
    protocol: 'https:',
  });
  t.same(parseTarget('http://localhost:8000'), {
    origin: 'http://localhost:8000',
    path: '/',
    query: '',
    protocol: 'http:',
  });
  t.equal(parseTarget('http://h/p?').query, '');
});

t.test('parseTarget accepts the forms that mean exactly what they say', async (t) => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['http://[::1]:9000/x', 'http://[::1]:9000'],
    ['http://[2001:db8::1]/', 'http://[2001:db8::1]'],
    ['http://[::ffff:10.0.0.1]/', 'http://[::ffff:a00:1]'],
    ['http://10.0.0.1:65535', 'http://10.0.0.1:65535'],
    ['http://h:1', 'http://h:1'],
    ['http://h:080/', 'http://h'],
    ['http://backend.internal', 'http://backend.internal'],
    ['http://café.test/', 'http://xn--caf-dma.test'],
    // '@' after the authority is path or query data, not credentials.
    ['http://h/users/@me?mail=a@b.test', 'http://h'],
  ];
  for (const [url, origin] of cases) t.equal(parseTarget(url).origin, origin, url);
  t.equal(parseTarget('http://h/users/@me?mail=a@b.test').path, '/users/@me');
  t.equal(parseTarget('http://h/a%20b').path, '/a%20b');
});

t.test('parseTarget rejects targets the proxy cannot use, with a code per kind', async (t) => {
  const cases: ReadonlyArray<readonly [string, TargetUrlErrorCode]> = [
    ['', 'TARGET_INVALID'],
    ['not a url', 'TARGET_INVALID'],
    ['/relative/path', 'TARGET_INVALID'],
    ['127.0.0.1:8000', 'TARGET_INVALID'],
    // Forms the URL parser would silently repair.
    [' http://h/', 'TARGET_INVALID'],
    ['http://h/ ', 'TARGET_INVALID'],
    ['http://h/a\tb', 'TARGET_INVALID'],
    ['http://h/a\nb', 'TARGET_INVALID'],
    ['http://h\\x', 'TARGET_INVALID'],
    ['http:/h/x', 'TARGET_INVALID'],
    ['http:///h/x', 'TARGET_INVALID'],
    ['http://', 'TARGET_INVALID'],
    ['http://ex ample.test', 'TARGET_INVALID'],
    ['http://[fe80::1%25eth0]/', 'TARGET_INVALID'],
    ['http://::1/', 'TARGET_INVALID'],
    ['ftp://h/x', 'TARGET_PROTOCOL'],
    ['file:///etc/passwd', 'TARGET_PROTOCOL'],
    ['ws://h/x', 'TARGET_PROTOCOL'],
    ['javascript:alert(1)', 'TARGET_PROTOCOL'],
    ['http://user:pw@h/x', 'TARGET_CREDENTIALS'],
    ['http://user@h/x', 'TARGET_CREDENTIALS'],
    ['http://:pw@h/x', 'TARGET_CREDENTIALS'],
    ['http://@h/x', 'TARGET_CREDENTIALS'],
    ['http://user:pw@h:99999/x', 'TARGET_CREDENTIALS'],
    ['http://h:0/', 'TARGET_PORT'],
    ['http://h:65536/', 'TARGET_PORT'],
    ['http://[::1]:70000/', 'TARGET_PORT'],
    // IPv4 spellings that the URL parser turns into another address.
    ['http://010.0.0.1/', 'TARGET_HOST'],
    ['http://0x7f.1/', 'TARGET_HOST'],
    ['http://2130706433/', 'TARGET_HOST'],
    ['http://1.2.3/', 'TARGET_HOST'],
    ['http://1.2.3.4./', 'TARGET_HOST'],
    ['http://%31.2.3.4/', 'TARGET_HOST'],
    ['http://h/#frag', 'TARGET_FRAGMENT'],
    ['http://h#', 'TARGET_FRAGMENT'],
  ];
  for (const [url, code] of cases) {
    const error = t.throws(() => parseTarget(url), JSON.stringify(url));
    t.ok(error instanceof TargetUrlError, `${JSON.stringify(url)}: a TargetUrlError`);
    t.match(error, { code }, JSON.stringify(url));
  }
});

t.test('parseTarget never repeats the URL, which may hold credentials', async (t) => {
  for (const url of [
    'http://admin:s3cret@h/',
    'http://admin:s3cret@h:0/',
    'ftp://admin:s3cret@h/',
  ]) {
    const error = t.throws(() => parseTarget(url)) as Error;
    t.notMatch(error.message, 's3cret', url);
  }
});
