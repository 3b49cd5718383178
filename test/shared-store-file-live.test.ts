// The store file check (shared/store-file.ts) on a file a writer is growing: an edge opens the
// store while the supervisor commits (the revocations it caught up on at start). CI saw an edge
// refuse a sound store as "truncated (page 21 is past its end)": the size had been taken before
// a commit that the meta page read afterwards named. The writer here is a real LMDB writer in
// another process, extending the file with every commit.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { lmdbFileProblem } from '../shared/store-file.js';

// One put per commit, each value 20 KB (overflow pages): every commit appends pages.
const WRITER = `
import { open } from 'lmdb';
const db = open({ path: process.argv[1], compression: false });
const value = 'x'.repeat(20_000);
let i = 0;
await db.put('k' + i++, value);
process.stdout.write('ready\\n');
for (;;) await db.put('k' + i++, value);
`;

function startWriter(path: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, path], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`writer exited (${code})`)));
    createInterface({ input: child.stdout! }).once('line', () => resolve(child));
  });
}

t.test('a file growing under a writer is never called damaged', async (t) => {
  const path = join(t.testdir(), 'data.mdb');
  const writer = await startWriter(path);
  t.teardown(() => {
    writer.kill('SIGKILL');
  });
  const startSize = statSync(path).size;
  const problems = new Map<string, number>();
  let checks = 0;
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    for (let i = 0; i < 50; i++) {
      const problem = lmdbFileProblem(path);
      checks++;
      if (problem !== undefined) problems.set(problem, (problems.get(problem) ?? 0) + 1);
    }
    // Let the writer's commits land between rounds on a busy machine.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const grown = statSync(path).size - startSize;
  t.ok(grown > 200_000, `the writer grew the file meanwhile (${grown} bytes)`);
  t.ok(checks > 1_000, `${checks} checks`);
  t.same(Object.fromEntries(problems), {}, 'no check found a problem');
  t.ok(existsSync(`${path}-lock`));
});
