// Attack on the remembered family decisions (worker/upstream-headers.ts isTrustedOnlyHeader):
// a trusted-only name must never pass whatever was asked before it, whatever drop list came
// with an earlier ask, across the clear at 1,024 names in the middle of a request, and for
// names that are special to plain objects. Names reach it lower-case (uWS lowers them; uWS
// refuses names with `_`: test/attack25-header-names.test.ts).
import t from 'tap';
import {
  compileDropList,
  familyDecisionsSize,
  isTrustedOnlyHeader,
  upstreamRequestHeaders,
} from '../worker/upstream-headers.js';
import type { Exchange } from '../worker/uws-io.js';

const DROP = compileDropList(['x-corp-id', 'x-tenant-*']);
const OTHER = compileDropList(['x-other']);

t.test('a name asked with one drop list, then another, then none', async (t) => {
  for (const first of [DROP, OTHER, undefined]) {
    isTrustedOnlyHeader('x-corp-id', first);
    isTrustedOnlyHeader('x-tenant-a', first);
    t.ok(isTrustedOnlyHeader('x-corp-id', DROP), 'dropped where listed');
    t.notOk(isTrustedOnlyHeader('x-corp-id', OTHER), 'kept where not listed');
    t.notOk(isTrustedOnlyHeader('x-corp-id'), 'kept without a list');
    t.ok(isTrustedOnlyHeader('x-tenant-a', DROP));
    t.notOk(isTrustedOnlyHeader('x-tenant-a', OTHER));
    // A family name stays out whatever list it is asked with, first or later.
    for (const list of [OTHER, DROP, undefined]) t.ok(isTrustedOnlyHeader('x-real-ip', list));
  }
});

t.test('names special to objects, empty and odd names', async (t) => {
  for (const name of ['__proto__', 'constructor', 'tostring', 'hasownproperty', '', '-', 'x']) {
    t.notOk(isTrustedOnlyHeader(name), `${JSON.stringify(name)} first`);
    t.notOk(isTrustedOnlyHeader(name), `${JSON.stringify(name)} remembered`);
  }
  t.ok(isTrustedOnlyHeader('__proto__', compileDropList(['__proto__'])), 'listed: dropped');
  t.ok(isTrustedOnlyHeader('x-forwarded-for'), 'families unaffected');
  t.ok(isTrustedOnlyHeader('impersonate-user'));
});

t.test('the clear at 1,024 names in the middle of one request', async (t) => {
  // One request whose names straddle the bound: family names before, at and after the clear.
  const headers: string[] = [];
  for (let i = 0; i < 1100; i++) {
    headers.push(`x-fill-${i}`, 'v');
    if (i % 100 === 0) headers.push('x-forwarded-for', 'evil', 'true-client-ip', 'evil');
    if (i % 100 === 50) headers.push('x-corp-id', 'evil', 'x-auth-request-user', 'evil');
  }
  for (let round = 0; round < 3; round++) {
    const out = upstreamRequestHeaders(
      { headers, host: 'h', ip: '1.2.3.4' } as unknown as Exchange,
      {
        forwardedFor: '1.2.3.4',
        proto: 'http',
        identity: undefined,
        dropAllAuthorization: false,
        withheldAuthorization: undefined,
        stripSessionCookie: false,
        drop: DROP,
      },
    );
    const leaked = out.filter((v, i) => i % 2 === 1 && v === 'evil');
    t.same(leaked, [], `round ${round}: nothing trusted-only passed`);
    t.ok(familyDecisionsSize() <= 1024, `round ${round}: ${familyDecisionsSize()} remembered`);
  }
});
