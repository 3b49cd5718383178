import { readdirSync, readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { CodedError } from '../shared/coded-error.js';
import {
  ERRORS,
  type ErrorCode,
  errorBody,
  GatewayError,
  refusal,
  retryAfter,
  statusLine,
} from '../shared/errors.js';

const ROOT = join(import.meta.dirname, '..');
const CODE_DIRS = ['worker', 'shared', 'supervisor', 'conf', 'crypto-pool'];

function sources(): string[] {
  return CODE_DIRS.flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !(dir === 'shared' && f === 'errors.ts'))
      .map((f) => readFileSync(join(ROOT, dir, f), 'utf8')),
  );
}

t.test('every code of the catalog is used somewhere, and only catalog codes are', async (t) => {
  const text = sources().join('\n');
  for (const code of Object.keys(ERRORS)) {
    t.ok(text.includes(`'${code}'`), `${code} is thrown or mapped somewhere`);
  }
  const thrown = [...text.matchAll(/(?:new GatewayError|refusal)\('([A-Z_]+)'/g)].map((m) => m[1]);
  t.ok(thrown.length > 10, 'the scan finds the throw sites');
  for (const code of thrown) t.ok(code! in ERRORS, `${code} is in the catalog`);
});

t.test('every status is a standard one with its reason phrase', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.ok(spec.status >= 400 && spec.status <= 599, `${code}: an error status`);
    t.ok(STATUS_CODES[spec.status], `${code}: ${spec.status} is in the standard table`);
    t.equal(statusLine(spec.status), `${spec.status} ${STATUS_CODES[spec.status]}`);
    t.ok(spec.message.length > 0 && !spec.message.endsWith('.'), `${code}: a short message`);
  }
  t.equal(statusLine(200), '200 OK', 'success is not an "Error"');
  t.equal(statusLine(418), "418 I'm a Teapot");
  t.equal(statusLine(599), '599 ', 'an unknown status keeps an empty phrase');
});

t.test('bodies: {code, error, message}, a detail appended, never a cause', async (t) => {
  const body = JSON.parse(errorBody('NO_ROUTE'));
  t.same(body, { code: 404, error: 'NO_ROUTE', message: ERRORS.NO_ROUTE.message });
  t.equal(errorBody('NO_ROUTE'), errorBody('NO_ROUTE'), 'cached');
  const detailed = JSON.parse(errorBody('BAD_BODY', 'username is missing'));
  t.equal(detailed.message, `${ERRORS.BAD_BODY.message}: username is missing`);
  const err = new GatewayError('INTERNAL', { cause: new Error('secret internals') });
  t.notMatch(errorBody(err.code, err.detail), /secret internals/);
});

t.test("headers: the catalog's per code, then the computed ones", async (t) => {
  t.same(new GatewayError('TOKEN_MISSING').headers, [
    ['www-authenticate', 'Bearer realm="ProxyAuth"'],
  ]);
  t.match(new GatewayError('TOKEN_INVALID').headers?.[0]?.[1], /error="invalid_token"/);
  t.same(new GatewayError('OVERLOADED').headers, [['retry-after', '1']]);
  t.same(new GatewayError('METHOD_NOT_ALLOWED', { headers: [['allow', 'GET']] }).headers, [
    ['allow', 'GET'],
  ]);
  t.same(new GatewayError('OVERLOADED', { headers: [retryAfter(2.2)] }).headers, [
    ['retry-after', '1'],
    ['retry-after', '3'],
  ]);
  t.same(retryAfter(0), ['retry-after', '1'], 'at least one second');
  t.equal(new GatewayError('NO_ROUTE').headers, undefined);
});

t.test('framing errors close the connection; nothing else does', async (t) => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const close = code === 'BAD_FRAMING' || code === 'TRANSFER_CODING_NOT_SUPPORTED';
    t.equal(new GatewayError(code).close, close, code);
  }
});

t.test('coded errors: one base class, stable codes, no stack on refusals', async (t) => {
  const err = new GatewayError('NO_ROUTE');
  t.ok(err instanceof CodedError);
  t.equal(err.code, 'NO_ROUTE');
  t.equal(err.status, 404);
  t.equal(err.name, 'GatewayError');
  t.notMatch(String(err.stack), /\n\s+at /, 'no captured frames');
  t.equal(refusal('NO_ROUTE'), refusal('NO_ROUTE'), 'shared refusals');
  t.equal(refusal('NO_ROUTE').code, 'NO_ROUTE');
  class Sample extends CodedError<'SAMPLE'> {}
  const sample = new Sample('SAMPLE', 'a message', { cause: 'why' });
  t.equal(sample.name, 'Sample');
  t.equal(sample.cause, 'why');
});
