// Regression: the soak's gateway CPU per request went negative (-30 µs/req, measured) in the
// interval where an edge was killed and restarted: treeCpuSeconds summed only the processes
// alive at the time, so a dead edge took its whole lifetime's CPU out of the sum. The CPU of a
// child its parent has reaped stays in the parent's cutime + cstime and must still count.
import { spawn } from 'node:child_process';
import t from 'tap';
import { treeCpuSeconds } from '../bench/process-cpu.js';

const BURN_MS = 300;
// Burns CPU, says so, then waits to be killed (as an edge does until the supervisor restarts it).
const CHILD = `
  const start = process.cpuUsage();
  const spent = () => { const u = process.cpuUsage(start); return (u.user + u.system) / 1000; };
  while (spent() < ${BURN_MS});
  process.stdout.write('burned\\n');
  setInterval(() => {}, 1000);
`;
// Kills its child on a line from the test, then reaps it (node waits for it) and says so.
const PARENT = `
  const child = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(CHILD)}], { stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', () => process.stdout.write('reaped\\n'));
  process.stdin.once('data', () => child.kill('SIGKILL'));
  process.stdin.on('end', () => process.exit(0));
`;

const linuxOnly = { skip: process.platform !== 'linux' && '/proc is Linux only' };

t.test(
  'a descendant that exited and was reaped keeps its CPU in the tree',
  linuxOnly,
  async (t) => {
    const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => parent.kill());
    const pid = parent.pid as number;
    let out = '';
    const said = (word: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => out.includes(word) && resolve();
        parent.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          check();
        });
        parent.once('exit', () => reject(new Error(`exited before "${word}": ${out}`)));
        check();
      });
    await said('burned');
    const before = treeCpuSeconds(pid);
    parent.stdin.write('kill\n');
    await said('reaped');
    const after = treeCpuSeconds(pid);
    t.ok(
      before !== undefined && before >= BURN_MS / 1000,
      `the child's burn is counted: ${before} s`,
    );
    // Ticks are 10 ms, truncated per process and per field.
    t.ok(
      before !== undefined && after !== undefined && after >= before - 0.02,
      `the tree's CPU does not go down when a child dies: ${before} s, then ${after} s`,
    );
    const exited = new Promise((r) => parent.once('exit', r));
    parent.stdin.end();
    await exited;
  },
);
