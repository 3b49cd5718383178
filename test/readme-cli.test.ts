import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { configSchema } from '../conf/config-schema.js';
import { ensureConfigDir } from '../conf/first-run.js';
import { hashPassword } from '../crypto-pool/password.js';
import { COMMAND_NAMES } from '../supervisor/help.js';
import { cliEnv } from './helpers/cli.js';

// What the README says about running the CLI and about the first start, checked against what
// the code does.
const exec = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const readme = await readFile(join(REPO, 'README.md'), 'utf8');
const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };

/** The text of one `## ` section of the README. */
function section(title: string): string {
  const text = readme.split(`\n## ${title}\n`)[1]?.split('\n## ')[0];
  if (text === undefined) throw new Error(`README has no "## ${title}" section`);
  return text;
}

t.test('in a checkout, `npx proxyauth` and `npm start --` run the CLI', async (t) => {
  t.match(section('Quick start'), /`npx proxyauth COMMAND`/);
  t.match(section('Quick start'), /`npm start -- COMMAND`/);
  // --no-install: resolving to anything but this checkout's own bin must fail, not download.
  // npm_config_ignore_scripts: in a fresh clone `npx` links this project first and runs its
  // `prepare` (a rebuild that deletes dist/ under the test files running beside this one: seen
  // as ERR_MODULE_NOT_FOUND in another file's gateway). The build is `npm ci`'s job.
  const npx = await exec('npx', ['--no-install', 'proxyauth', '--version'], {
    cwd: REPO,
    env: cliEnv({ npm_config_ignore_scripts: 'true' }),
  });
  t.equal(npx.stdout, `proxyauth ${pkg.version}\n`);
  const start = await exec('npm', ['start', '--silent', '--', 'help'], {
    cwd: REPO,
    env: cliEnv(),
  });
  t.match(start.stdout, /^Usage: proxyauth /, '`npm start -- help` reaches the CLI');
});

t.test('the Commands table lists every command that exists, and only those', async (t) => {
  const firstCells = section('Commands')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.split(' | ')[0] ?? '');
  const documented = firstCells.flatMap((cell) =>
    [...cell.matchAll(/`proxyauth ([a-z][a-z-]*)/g)].map((m) => m[1]),
  );
  t.same([...new Set(documented)].sort(), [...COMMAND_NAMES].sort());
});

t.test('the README names every first-start value that is not the default', async (t) => {
  const dir = t.testdir({});
  await ensureConfigDir(dir, { hash: hashPassword });
  const written = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const defaults = configSchema.parse({ secret: 's'.repeat(64) }) as Record<string, unknown>;
  // Generated per install: not defaults in the first place.
  const generated = new Set(['secret', 'token_admin', 'users']);
  const differing = Object.keys(written).filter(
    (key) => !generated.has(key) && JSON.stringify(written[key]) !== JSON.stringify(defaults[key]),
  );
  t.same(differing.sort(), ['timezone', 'worker'], 'what the README explains today');
  const text = section('Commands').replace(/\s+/g, ' ');
  for (const key of differing) {
    const shown = `\`"${key}": ${JSON.stringify(written[key])}\``;
    const byDefault = String(defaults[key]);
    t.ok(
      text.includes(`${shown} (default ${byDefault})`) ||
        text.includes(`${shown} (default \`${byDefault}\`)`),
      `README: ${shown} (default ${byDefault})`,
    );
  }
});
