import t from 'tap';
import {
  expiredSessionCookie,
  sessionCookie,
  sessionCookieValues,
  withoutSessionCookie,
} from '../worker/session-cookie.js';

t.test('session_token values are read from every Cookie header, exact name only', async (t) => {
  t.same(sessionCookieValues(['a=1; session_token=abc; b=2']), ['abc']);
  t.same(sessionCookieValues(['session_token="q"']), ['q'], 'quoted value unquoted');
  t.same(sessionCookieValues(['x=1', 'session_token=one', 'session_token=two']), ['one', 'two']);
  t.same(sessionCookieValues(['Session_Token=abc; my_session_token=x; session_tokens=y']), []);
  t.same(sessionCookieValues([]), []);
});

t.test('the gateway cookie is removed, other cookies keep their order', async (t) => {
  t.equal(withoutSessionCookie('a=1; session_token=abc; b=2'), 'a=1; b=2');
  t.equal(withoutSessionCookie('session_token=abc'), undefined);
  t.equal(withoutSessionCookie('session_token=abc;session_token=def'), undefined);
  t.equal(withoutSessionCookie('theme=dark'), 'theme=dark', 'untouched without ours');
  t.equal(withoutSessionCookie('my_session_token=1; session_token=2'), 'my_session_token=1');
});

t.test('Set-Cookie values carry every protection attribute', async (t) => {
  const set = sessionCookie('TOKEN', 3600);
  t.equal(set, 'session_token=TOKEN; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600');
  t.match(sessionCookie('T', 0.4), /Max-Age=1$/, 'never 0 for a live session');
  t.equal(
    expiredSessionCookie(),
    'session_token=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0',
  );
});
