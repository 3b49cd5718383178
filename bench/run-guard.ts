// The run guard: a process of its own (detached: no terminal signal reaches it) that holds the
// read end of a pipe from the bench runner. The kernel closes the write end however the runner
// ends, SIGKILL included, so end-of-file here means "the runner is gone". A runner that cleaned
// up writes GUARD_DISMISS first; without it, the guard stops every child in the run's ledger and
// removes the run's temp dir (argv[2]). Started by `guardRun` (run-dir.ts).

import { reapRun } from './reap-run.js';
import { GUARD_DISMISS } from './run-ledger.js';

/** SIGTERM to SIGKILL, as the runner's own stop of a gateway gives it to drain. */
const GRACE_MS = 5000;

const dir = process.argv[2];
if (dir === undefined) {
  console.error('usage: run-guard.js RUN_DIR');
  process.exit(2);
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  input += chunk;
});
process.stdin.once('end', () => {
  if (input.split('\n').includes(GUARD_DISMISS)) return;
  void reapRun(dir, GRACE_MS).then(
    ({ stopped }) =>
      console.error(`bench runner died: run guard stopped ${stopped} children, removed ${dir}`),
    (err: Error) => {
      console.error(`bench run guard: clean-up of ${dir} failed: ${err.message}`);
      process.exitCode = 1;
    },
  );
});
