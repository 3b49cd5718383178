import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import { rewritePlaintextPasswords } from '../conf/rewrite-passwords.js';
import { hashPassword, verifyPassword } from '../crypto-pool/password.js';

const hash = (pw: string) => hashPassword(pw);

const SECRET = 'S'.repeat(64);
const EXISTING =
  '$argon2id$v=19$m=19456,t=2,p=1$3bmF6Xo0OdzVxKJYrLRZTw$Jk5L8K5F9bYp1w3jvV6Fqv3u1YgKkVYbDq3uS1r6M8o';
const PW_ALICE = '"hunter2"';
const PW_EMILE = '"p\\u00e4ss \\"quoted\\" ✓"';
// Odd on purpose: tabs, CRLF, spaces before colons, 1.50 and 1e3, escapes, astral characters,
// unknown keys, keys in no particular order.
const ODD = [
  `{"secret" :   "${SECRET}",\r\n`,
  '\t"numbers": [1.50, 1e3, -0, 2E-7, 0.1e+2],\r\n',
  '  "unicode": "héllo ✓ 😀 \\u00e9 \\/",\n',
  `\t\t"users": [ {"username":"alice","password":${PW_ALICE}, "roles": ["a"]},\n`,
  `    { "password" : "${EXISTING}", "username": "bob" },\n`,
  `    {"username": "émile",   "password"   :   ${PW_EMILE}} ],\n`,
  ' "future_key": {"x": [true, false, null, {}], "y": []},\n',
  '  "token_admin": ""\n',
  '}',
].join('');

t.test('hashes only plaintext passwords, every other byte identical', async (t) => {
  const dir = t.testdir({ 'config.json': ODD });
  const file = join(dir, 'config.json');
  await chmod(file, 0o640);
  const { rewritten } = await rewritePlaintextPasswords(file, hash);
  t.equal(rewritten, 2);

  const after = await readFile(file, 'utf8');
  const users = (JSON.parse(after) as { users: { password: string }[] }).users;
  const [alice, bob, emile] = users.map((u) => u.password);
  t.match(alice, /^\$argon2id\$/);
  t.match(emile, /^\$argon2id\$/);
  t.equal(bob, EXISTING, 'an existing hash is left alone');
  const expected = ODD.replace(PW_ALICE, JSON.stringify(alice)).replace(
    PW_EMILE,
    JSON.stringify(emile),
  );
  t.ok(
    Buffer.from(after, 'utf8').equals(Buffer.from(expected, 'utf8')),
    'only the passwords changed',
  );
  t.notMatch(after, /hunter2/);

  t.ok(await verifyPassword(alice ?? '', 'hunter2'));
  t.ok(await verifyPassword(emile ?? '', 'päss "quoted" ✓'));
  t.equal((await stat(file)).mode & 0o777, 0o640, 'mode preserved');
  t.equal(
    parseConfig(JSON.parse(after), null, { config: file, routes: 'r' }).config.users.length,
    3,
  );
});

t.test('a second run changes nothing', async (t) => {
  const dir = t.testdir({ 'config.json': ODD });
  const file = join(dir, 'config.json');
  await rewritePlaintextPasswords(file, hash);
  const once = await readFile(file);
  const { ino } = await stat(file);
  t.same(await rewritePlaintextPasswords(file, hash), { rewritten: 0 });
  t.ok((await readFile(file)).equals(once));
  t.equal((await stat(file)).ino, ino, 'not even rewritten');
});

t.test('a repeated password key is hashed in every occurrence', async (t) => {
  const text = `{"users": [{"username": "a", "password": "one", "password": "two"}]}`;
  const dir = t.testdir({ 'config.json': text });
  const file = join(dir, 'config.json');
  t.same(await rewritePlaintextPasswords(file, hash), { rewritten: 2 });
  const after = await readFile(file, 'utf8');
  t.notMatch(after, /"one"|"two"/);
});

t.test('non-string, empty and misplaced passwords are not touched', async (t) => {
  const text =
    '{"password": "top", "users": [{"username": "a", "password": ""}, {"password": 5}, "x"], "other": {"password": "z"}}';
  const dir = t.testdir({ 'config.json': text });
  const file = join(dir, 'config.json');
  t.same(await rewritePlaintextPasswords(file, hash), { rewritten: 0 });
  t.equal(await readFile(file, 'utf8'), text);
});

t.test('refuses a file that is not valid UTF-8, and leaves it alone', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'config.json');
  const bytes = Buffer.concat([
    Buffer.from('{"x": "'),
    Buffer.from([0xff]),
    Buffer.from('", "users": [{"password": "p"}]}'),
  ]);
  await writeFile(file, bytes);
  await t.rejects(rewritePlaintextPasswords(file, hash), { code: 'CONFIG_NOT_UTF8' });
  t.ok((await readFile(file)).equals(bytes));
});

t.test('an edit made while hashing is never overwritten', async (t) => {
  const dir = t.testdir({ 'config.json': '{"users": [{"username": "a", "password": "p"}]}' });
  const file = join(dir, 'config.json');
  const edited = '{"users": [{"username": "a", "password": "new"}]}';
  const slowHash = async (pw: string) => {
    await writeFile(file, edited);
    return hash(pw);
  };
  await t.rejects(rewritePlaintextPasswords(file, slowHash), {
    code: 'CONFIG_CHANGED_DURING_REWRITE',
  });
  t.equal(await readFile(file, 'utf8'), edited);
});

t.test('a JSON syntax error is reported, the file untouched', async (t) => {
  const dir = t.testdir({ 'config.json': '{"users": [{"password": "p"}' });
  const file = join(dir, 'config.json');
  await t.rejects(rewritePlaintextPasswords(file, hash), { code: 'JSON_SYNTAX' });
  t.equal(await readFile(file, 'utf8'), '{"users": [{"password": "p"}');
});
