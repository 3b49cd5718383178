import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { watchNamedFiles } from '../supervisor/file-watch.js';

/** Counts calls of the watch's callback; `settle` waits past its 300 ms debounce. */
function counter() {
  let calls = 0;
  return {
    onChange: () => {
      calls++;
    },
    get calls() {
      return calls;
    },
  };
}
const settle = () => new Promise((r) => setTimeout(r, 700));

t.test('a change to a named file calls back; another file of its dir does not', async (t) => {
  const dir = t.testdir({ 'page.html': 'a', 'other.txt': 'x' });
  const seen = counter();
  const watch = watchNamedFiles(seen.onChange);
  t.teardown(() => watch.close());
  await watch.refresh([join(dir, 'page.html')]);
  await writeFile(join(dir, 'other.txt'), 'y');
  await settle();
  t.equal(seen.calls, 0, 'a file not named is ignored');
  await writeFile(join(dir, 'page.tmp'), 'b');
  await rename(join(dir, 'page.tmp'), join(dir, 'page.html'));
  await settle();
  t.equal(seen.calls, 1, 'a replace by rename is seen, once per burst');
  await writeFile(join(dir, 'page.html'), 'c');
  await settle();
  t.equal(seen.calls, 2, 'an in-place write is seen');
});

t.test('refresh follows the list: a file dropped from it is no longer watched', async (t) => {
  const dir = t.testdir({ 'a.pem': 'a', 'b.pem': 'b' });
  const seen = counter();
  const watch = watchNamedFiles(seen.onChange);
  t.teardown(() => watch.close());
  await watch.refresh([join(dir, 'a.pem')]);
  await watch.refresh([join(dir, 'b.pem')]);
  await writeFile(join(dir, 'a.pem'), 'a2');
  await settle();
  t.equal(seen.calls, 0, 'a.pem left the list');
  await writeFile(join(dir, 'b.pem'), 'b2');
  await settle();
  t.equal(seen.calls, 1, 'b.pem joined it');
  watch.close();
  await writeFile(join(dir, 'b.pem'), 'b3');
  await settle();
  t.equal(seen.calls, 1, 'nothing after close');
});

t.test('a symlinked file: the directory it points into is watched whole', async (t) => {
  const dir = t.testdir({ live: {}, archive: { 'cert1.pem': '1' } });
  await symlink(join(dir, 'archive', 'cert1.pem'), join(dir, 'live', 'cert.pem'));
  const seen = counter();
  const watch = watchNamedFiles(seen.onChange);
  t.teardown(() => watch.close());
  await watch.refresh([join(dir, 'live', 'cert.pem')]);
  // certbot's renewal: a new file in archive/ (the link is then swapped, seen in live/).
  await writeFile(join(dir, 'archive', 'cert2.pem'), '2');
  await settle();
  t.equal(seen.calls, 1, 'a new file where the link points is seen');
});

t.test(
  'a directory that does not exist is skipped, and watched once refreshed after',
  async (t) => {
    const dir = t.testdir({});
    const seen = counter();
    const watch = watchNamedFiles(seen.onChange);
    t.teardown(() => watch.close());
    const file = join(dir, 'certs', 'cert.pem');
    await watch.refresh([file]);
    await mkdir(join(dir, 'certs'));
    await writeFile(file, 'x');
    await settle();
    t.equal(seen.calls, 0, 'not watched while its dir was missing');
    await watch.refresh([file]);
    await writeFile(file, 'y');
    await settle();
    t.equal(seen.calls, 1, 'watched after the refresh');
  },
);
