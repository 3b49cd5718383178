import t from 'tap';
import { CodedError } from '../shared/coded-error.js';
import { failureMessage } from '../supervisor/failure-message.js';

function systemError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: oops, ${syscall} '${path}'`);
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

t.test('a file the process may not touch: one line, and what to check', async (t) => {
  const text = failureMessage(systemError('EACCES', 'open', '/etc/proxyauth/config/config.json'));
  t.match(text, /^EACCES: oops, open '\/etc\/proxyauth\/config\/config\.json'\n/);
  t.match(text, /must belong to the user running proxyauth/);
  t.notMatch(text, /\n\s+at /, 'no stack trace');
});

t.test('another system error: its message only', async (t) => {
  t.equal(failureMessage(systemError('ENOTDIR', 'mkdir', '/x/y')), "ENOTDIR: oops, mkdir '/x/y'");
});

t.test('a coded error: message and code', async (t) => {
  t.equal(
    failureMessage(new CodedError('OPENSSL_FAILED', 'no openssl')),
    'no openssl (OPENSSL_FAILED)',
  );
});

t.test('anything else is a bug: the stack is kept', async (t) => {
  t.match(failureMessage(new TypeError('x is undefined')), /^TypeError: x is undefined\n\s+at /);
  t.equal(failureMessage('thrown string'), 'thrown string');
});
