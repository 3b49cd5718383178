// Attack on the bench's sweep of stale runs (bench/stale-runs.ts, reap-run.ts): a ledger names
// a child by pid, and for a process group whose leader is gone it took any live group of that
// id for its own and SIGKILLed it. Pids are reused (pid_max is 32768 on many machines), and a
// leaderless group is common: a shell pipeline whose first command exited (`cat f | less`,
// `npm run bench | tee log`), a daemon that forked twice. A stale run's ledger, read hours or a
// reboot later, must not kill such a group of someone else's.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { allProcesses, isAlive, procStat } from '../bench/proc-stat.js';
import { reapStaleRuns } from '../bench/stale-runs.js';

const self = procStat(process.pid)?.startTime ?? 0;
// This process under another start time: a runner that died and whose pid was reused.
const deadOwner = `owner ${process.pid} ${self + 1}\n`;

/**
 * A process group whose leader exited while a member (`sleep`) runs on: `session` puts it in a
 * session of its own first (a daemon's double fork), else it stays in this one (a pipeline).
 * Resolves with the group's id (the dead leader's pid) and the member's pid and start time.
 */
async function leaderlessGroup(
  t: Test,
  session: boolean,
): Promise<{ pgid: number; member: number; memberStart: number }> {
  const code = [
    'import os, sys',
    session ? 'os.setsid()' : 'os.setpgid(0, 0)',
    "pid = os.spawnlp(os.P_NOWAIT, 'sleep', 'sleep', '60')",
    "sys.stdout.write(str(pid) + '\\n')",
    'sys.stdout.flush()',
    'os._exit(0)',
  ].join('\n');
  const leader = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  leader.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise((resolve) => leader.once('exit', resolve));
  const member = Number(out.trim());
  const stat = procStat(member);
  if (stat === undefined) throw new Error('the member did not start');
  t.teardown(() => {
    if (isAlive(member, stat.startTime)) process.kill(member, 'SIGKILL');
  });
  t.equal(procStat(leader.pid as number), undefined, 'the leader is gone');
  t.equal(stat.pgrp, leader.pid, 'its group lives on without it');
  return { pgid: leader.pid as number, member, memberStart: stat.startTime };
}

/** A stale run dir in `root` whose ledger names group `pgid`, started at `startTime`. */
function staleRun(root: string, pgid: number, startTime: number): string {
  const dir = join(root, 'proxyauth-bench-stale1');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'ledger'), `${deadOwner}group ${pgid} ${startTime}\n`);
  return dir;
}

t.test("a pipeline's group that took a stale run's group id is left alone", async (t) => {
  const group = await leaderlessGroup(t, false);
  const root = t.testdir();
  // The run's gateway had that pid long before: it started earlier than the pipeline.
  staleRun(root, group.pgid, group.memberStart - 100);
  const reaped = await reapStaleRuns(root, 100);
  t.equal(reaped.length, 1, 'the stale run dir is removed');
  await sleep(100);
  t.ok(isAlive(group.member, group.memberStart), "the pipeline's process still runs");
});

t.test('a ledger written before the machine booted signals nothing', async (t) => {
  // A daemon's group: its own session and group, as the bench's detached children have.
  const group = await leaderlessGroup(t, true);
  const root = t.testdir();
  const dir = staleRun(root, group.pgid, group.memberStart - 100);
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
  utimesSync(join(dir, 'ledger'), btime - 3600, btime - 3600);
  const reaped = await reapStaleRuns(root, 100);
  t.equal(reaped.length, 1, 'the stale run dir is removed');
  await sleep(100);
  t.ok(isAlive(group.member, group.memberStart), "the daemon's process still runs");
});

t.test('a leaderless group of the run itself is still reaped', async (t) => {
  // The run's own detached child (its session and group) whose leader died: its edges.
  const group = await leaderlessGroup(t, true);
  const root = t.testdir();
  staleRun(root, group.pgid, group.memberStart - 1);
  await reapStaleRuns(root, 100);
  let alive = true;
  for (let waited = 0; alive && waited < 2000; waited += 50) {
    await sleep(50);
    alive = isAlive(group.member, group.memberStart);
  }
  t.notOk(alive, 'its member is stopped');
  t.notOk(
    allProcesses().some((p) => p.pgrp === group.pgid && p.state !== 'Z'),
    'nothing of the group runs',
  );
});
