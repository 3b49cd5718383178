// .ci/failures, run over saved tap results as a failed CI run leaves them: a t.equal failure
// must show its diff (tap writes it after a source excerpt that used the whole line budget), and
// a file that crashed or hit tap's timeout without a failed assertion must still be named.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const SCRIPT = readFileSync(new URL('../.ci/failures', import.meta.url), 'utf8');

/** t.equal(1, 2) as tap 21 saves it: compare, at, stack, source, then the diff. */
const EQUAL_FAILURE = `TAP version 14
# Subtest: group
    not ok 1 - one is two
      ---
      compare: ===
      at:
        fileName: test/fail.test.ts
        lineNumber: 3
        columnNumber: 5
        typeName: Test
      stack: |
        Test.<anonymous> (test/fail.test.ts:3:5)
        test/fail.test.ts:2:3
      source: |
        import t from 'tap';
        t.test('group', async (t) => {

          t.equal(1, 2, 'one is two');
        ----^
          t.same({ a: 1 }, { a: 2 }, 'objects');
        });
      diff: |
        --- expected
        +++ actual
        @@ -1,1 +1,1 @@
        -2
        +1
      ...

    1..1
not ok 1 - group # time=28.97ms
1..1
`;

const info = (externalID: string | undefined, code: number | null, signal: string | null) =>
  JSON.stringify({ externalID, code, signal, parent: externalID ? null : 'x', argv: [] });

function run(dir: string): string {
  return execFileSync('bash', [join(dir, '.ci', 'failures')], { encoding: 'utf8' });
}

t.test('a failed t.equal shows its diff; crashed and timed-out files are named', async (t) => {
  const dir = t.testdir({
    '.ci': { failures: SCRIPT },
    '.tap': {
      'test-results': {
        test: {
          'fail.test.ts.tap': EQUAL_FAILURE,
          'crash.test.ts.tap': 'TAP version 14\nok 1 - fine so far\n1..1\n',
        },
      },
      processinfo: {
        'a.json': info('test/fail.test.ts', 1, null),
        'b.json': info('test/crash.test.ts', 3, null),
        'c.json': info('test/hang.test.ts', null, 'SIGALRM'),
        'd.json': info('test/pass.test.ts', 0, null),
        // A gateway a test started and stopped: not a test file.
        'e.json': info(undefined, null, 'SIGTERM'),
      },
    },
  });
  const out = run(dir);
  t.match(out, /not ok 1 - one is two/);
  t.match(out, /\n {8}-2\n {8}\+1\n/, 'the expected and actual values');
  t.notMatch(out, /----\^/, 'not the source excerpt');
  t.match(out, /test\/crash\.test\.ts: exit code 3/, 'a file that exited early');
  t.match(out, /test\/hang\.test\.ts: killed by SIGALRM \(tap timeout\)/, 'a timeout');
  t.notMatch(out, /pass\.test\.ts/, 'a file that passed is not listed');
  t.notMatch(out, /SIGTERM/, 'a process a test started is not listed');
});

t.test('only a crash: named, with the note that no assertion failed', async (t) => {
  const dir = t.testdir({
    '.ci': { failures: SCRIPT },
    '.tap': {
      'test-results': { test: { 'crash.test.ts.tap': 'TAP version 14\nok 1\n1..1\n' } },
      processinfo: { 'b.json': info('test/crash.test.ts', 3, null) },
    },
  });
  const out = run(dir);
  t.match(out, /test\/crash\.test\.ts: exit code 3/);
  t.match(out, /tap saved no failed assertion/);
});

t.test('no results at all: said so, exit 0', async (t) => {
  const dir = t.testdir({ '.ci': { failures: SCRIPT } });
  t.equal(run(dir).trim(), 'no tap results in .tap/test-results');
});
