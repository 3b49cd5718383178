import { type ChildProcess, spawn } from 'node:child_process';
import {
  access,
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import t from 'tap';
import { configSchema } from '../conf/config-schema.js';
import { routesFileSchema } from '../conf/routes-schema.js';
import { STORE_FILE } from '../shared/store.js';
import { parseCliArgs } from '../supervisor/args.js';
import { resolveDirs } from '../supervisor/dirs.js';
import { COMMANDS } from '../supervisor/help.js';
import { argsOf, envOf, execForm, parseDockerfile, type Stage } from './helpers/dockerfile.js';
import { waitFor } from './helpers/gateway.js';

/*
 * deploy/Dockerfile and deploy/compose.yml cannot be built or started on this machine (a docker
 * client, no daemon): they are checked against the code instead, so that a renamed flag, a moved
 * default or a new source directory breaks this test rather than the image. The image's
 * entrypoint is also run the way the image runs it: PID 1 of its own PID and network
 * namespaces, as the image's user, with the image's environment.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(REPO, 'deploy');
const isRoot = process.getuid?.() === 0;

const stages = parseDockerfile(await readFile(join(DEPLOY, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1) as Stage;
const env = envOf(runtime);
const volumes = argsOf(runtime, 'VOLUME').flatMap(execForm);
const compose = yaml.load(await readFile(join(DEPLOY, 'compose.yml'), 'utf8')) as Compose;
const deployReadme = await readFile(join(DEPLOY, 'README.md'), 'utf8');

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  volumes?: string[];
  ports?: string[];
  stop_grace_period?: string;
  stop_signal?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** The image's user as uid and gid (numbers: a name could not be prepared for on the host). */
function imageUser(): { uid: number; gid: number } {
  const [user = ''] = argsOf(runtime, 'USER').slice(-1);
  const match = /^(\d+):(\d+)$/.exec(user);
  if (!match) throw new Error(`USER is not uid:gid: ${user}`);
  return { uid: Number(match[1]), gid: Number(match[2]) };
}

/** The drain of `proxyauth run` in seconds, as its help states it ("at most 10 s"). */
function drainSeconds(): number {
  return Number(/at most (\d+) s\b/.exec(COMMANDS.run.details)?.[1]);
}

t.test('the image: stages, libc, user, no dev tools', async (t) => {
  t.ok(stages.length >= 2, 'multi-stage');
  for (const stage of stages) {
    t.match(
      stage.from,
      /^node:20(\.\d+)*-(bullseye|bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/,
      `${stage.name ?? 'runtime'}: Node 20 on Debian`,
    );
  }
  t.equal(new Set(stages.map((s) => s.from)).size, 1, 'one base image: the same glibc');
  const { uid, gid } = imageUser();
  t.not(uid, 0, 'not root');
  t.not(gid, 0);
  const run = argsOf(runtime, 'RUN').join('\n');
  t.match(run, new RegExp(`--uid ${uid}\\b`), 'the user is created with that uid');
  t.match(run, new RegExp(`--gid ${gid}\\b`), 'and gid');
  t.notMatch(run, /\b(build-essential|gcc|g\+\+|make|python3?)\b/, 'no compiler in the runtime');
  t.notMatch(run, /npm (ci|install)\b/, 'the runtime installs no npm package itself');
  const copied = argsOf(runtime, 'COPY');
  t.same(copied, ['--from=build /opt/proxyauth /opt/proxyauth'], 'only the built package');
  const build = stages.find((s) => s.name === 'build') as Stage;
  const buildRun = argsOf(build, 'RUN').join('\n');
  t.match(buildRun, /npm ci --prefix \/opt\/proxyauth --omit=dev\b/, 'production deps only');
  t.match(buildRun, /npm run build\b/);
  t.match(buildRun, /npm pack\b/, 'what `files` of package.json says is shipped');
});

t.test('the build stage copies everything the build and the package need', async (t) => {
  const build = stages.find((s) => s.name === 'build') as Stage;
  const sources = argsOf(build, 'COPY').flatMap((args) => {
    const parts = args.split(/\s+/);
    return parts.slice(0, -1);
  });
  const buildConfig = JSON.parse(await readFile(join(REPO, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
  };
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
    files: string[];
  };
  const packed = pkg.files
    .filter((f) => !f.startsWith('!') && f !== 'dist')
    .map((f) => f.split('/')[0] as string);
  for (const needed of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    ...buildConfig.include,
    ...packed,
  ]) {
    t.ok(sources.includes(needed), `COPY ${needed}`);
  }
  const ignore = await readFile(join(REPO, '.dockerignore'), 'utf8');
  for (const kept of ['node_modules', 'dist', '.git', 'deploy/cluster']) {
    t.match(ignore, new RegExp(`^${kept.replace('.', '\\.')}$`, 'm'), `${kept} stays out`);
  }
  t.ok(pkg.files.includes('!deploy/cluster'), "compose's config dirs (secrets) are not packed");
});

t.test('the image passes the CLI its dirs, and they are the volumes', async (t) => {
  const dirs = resolveDirs({ configDir: undefined, dataDir: undefined }, env, false);
  t.same(dirs, { configDir: '/etc/proxyauth/config', dataDir: '/var/lib/proxyauth' });
  t.same(volumes, [dirs.configDir, dirs.dataDir], 'VOLUME: the config dir and the data dir');
  const run = argsOf(runtime, 'RUN').join('\n');
  const { uid, gid } = imageUser();
  t.match(
    run,
    `install -d -m 0700 -o ${uid} -g ${gid} ${dirs.configDir} ${dirs.dataDir}`,
    "both belong to the image's user (a named volume starts as this directory)",
  );
  const port = configSchema.shape.port.parse(undefined);
  t.same(argsOf(runtime, 'EXPOSE'), [String(port)], "EXPOSE: config.json's default port");
  t.same(argsOf(runtime, 'STOPSIGNAL'), ['SIGTERM'], 'the signal that drains');
  t.same(argsOf(runtime, 'HEALTHCHECK'), [], 'no health check: there is no health endpoint');
  const [entrypoint] = argsOf(runtime, 'ENTRYPOINT').map(execForm);
  t.same(entrypoint, ['proxyauth']);
  t.match(
    run,
    /install -m 0755 \/opt\/proxyauth\/deploy\/container-entry\.sh \/usr\/local\/bin\/proxyauth/,
  );
  const [cmd = []] = argsOf(runtime, 'CMD').map(execForm);
  t.match(parseCliArgs(cmd), { command: 'run' }, 'CMD is `proxyauth run`');
});

t.test('compose: redis, an upstream, two nodes with their own dirs', async (t) => {
  const { services } = compose;
  t.ok(services.redis?.image?.startsWith('redis:'), 'a Redis');
  const upstream = Object.keys(services).find((name) => services[name]?.image?.includes('whoami'));
  t.ok(upstream, 'a tiny upstream');
  const nodes = Object.entries(services).filter(([, s]) => s.build !== undefined);
  t.same(
    nodes.map(([name]) => name),
    ['node1', 'node2'],
  );
  const port = argsOf(runtime, 'EXPOSE')[0];
  const hostPorts = new Set<string>();
  const configMounts = new Set<string>();
  const dataVolumes = new Set<string>();
  for (const [name, node] of nodes) {
    t.equal(node.build?.dockerfile, 'deploy/Dockerfile', `${name}: this Dockerfile`);
    await access(join(DEPLOY, node.build?.context ?? '', node.build?.dockerfile ?? ''));
    const mounts = new Map(
      (node.volumes ?? []).map((v) => {
        const [source = '', target = ''] = v.split(':');
        return [target, source] as const;
      }),
    );
    t.same([...mounts.keys()].sort(), [...volumes].sort(), `${name}: the two volumes`);
    const config = mounts.get(volumes[0] as string) ?? '';
    t.ok(config.startsWith('./cluster/'), `${name}: config from a bind mount`);
    configMounts.add(config);
    const data = mounts.get(volumes[1] as string) ?? '';
    t.ok(compose.volumes && data in compose.volumes, `${name}: data in a named volume`);
    dataVolumes.add(data);
    const [published = ''] = node.ports ?? [];
    const [host, container] = published.split(':');
    t.equal(container, port, `${name}: the exposed port`);
    hostPorts.add(host ?? '');
    const grace = Number(/^(\d+)s$/.exec(node.stop_grace_period ?? '')?.[1]);
    t.ok(
      grace > drainSeconds(),
      `${name}: stop_grace_period ${grace} s > the ${drainSeconds()} s drain`,
    );
    t.equal(node.stop_signal ?? 'SIGTERM', 'SIGTERM');
  }
  t.equal(hostPorts.size, 2, 'different host ports');
  t.equal(configMounts.size, 2, 'a config dir each');
  t.equal(dataVolumes.size, 2, 'a data volume each');

  const routes = yaml.load(await readFile(join(DEPLOY, 'cluster-routes.yml'), 'utf8'));
  const parsed = routesFileSchema.parse(routes);
  t.ok(
    parsed.routes.every((r) => new URL(r.target).hostname === upstream),
    'the routes go to the upstream service',
  );
  const redisUrl = /"redis": "([^"]+)"/.exec(deployReadme)?.[1] ?? '';
  t.equal(
    configSchema.shape.redis.parse(redisUrl),
    redisUrl,
    'the redis URL of the README is valid',
  );
  t.equal(new URL(redisUrl).hostname, 'redis', 'and names the Redis service');
});

/** `proxyauth` argv of every `docker ... run|exec` line of deploy/README.md's container part. */
function readmeCommands(): { line: string; service: string; argv: string[] }[] {
  const section = deployReadme.split('\n## Containers\n')[1] ?? '';
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const lines = blocks
    .join('\n')
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim());
  const valued = new Set(['-v', '-e', '-p', '--name', '--stop-timeout', '-s', '--entrypoint']);
  const out: { line: string; service: string; argv: string[] }[] = [];
  for (const line of lines) {
    const words = line.split(/\s+/).map((w) => w.replace(/^"|"$/g, ''));
    const at = words.findIndex((w) => w === 'run' || w === 'exec');
    if (words[0] !== 'docker' || at < 0) continue;
    let i = at + 1;
    while (words[i]?.startsWith('-')) i += valued.has(words[i] ?? '') ? 2 : 1;
    const service = words[i] ?? '';
    let argv = words.slice(i + 1);
    if (words[at] === 'exec') {
      if (argv[0] !== 'proxyauth') continue;
      argv = argv.slice(1);
    }
    out.push({ line, service, argv });
  }
  return out;
}

t.test("every command of deploy/README.md's container part exists in the CLI", async (t) => {
  const commands = readmeCommands();
  t.ok(commands.length >= 5, 'the commands were found', { commands });
  const words = new Set(commands.map((c) => c.argv[0]));
  for (const needed of ['sync', 'check-config', 'stats']) t.ok(words.has(needed), needed);
  for (const { line, service, argv } of commands) {
    t.ok(
      service === 'proxyauth' || service in compose.services,
      `a service or the image: ${service}`,
    );
    t.doesNotThrow(() => parseCliArgs(argv), line);
  }
});

t.test("the image's entrypoint as PID 1: first start, the port, SIGTERM drains", async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'proxyauth-container-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await chmod(root, 0o755);
  const { uid, gid } = imageUser();
  // The image's dirs, under the temp root, made as the Dockerfile makes them.
  const at = (path: string) => join(root, path);
  for (const dir of volumes) {
    await mkdir(dirname(at(dir)), { recursive: true, mode: 0o755 });
    await mkdir(at(dir), { mode: 0o700 });
    if (isRoot) await chown(at(dir), uid, gid);
  }
  const entry = (await readFile(join(DEPLOY, 'container-entry.sh'), 'utf8')).replaceAll(
    '/opt/proxyauth',
    REPO,
  );
  const entryFile = at('proxyauth');
  await writeFile(entryFile, entry, { mode: 0o755 });
  const imageEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, at(v)]));
  const [cmd = []] = argsOf(runtime, 'CMD').map(execForm);
  const asUser = isRoot
    ? ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--']
    : [];
  const namespaces = isRoot ? [] : ['--user', '--map-root-user'];
  // `env -i`: the image's environment only (tap's NODE_OPTIONS hooks could not write as 10001).
  const proc = spawn(
    'unshare',
    [
      ...namespaces,
      '--pid',
      '--fork',
      '--mount-proc',
      '--net',
      '--',
      ...asUser,
      '/usr/bin/env',
      '-i',
      `PATH=${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      `HOME=${at('/var/lib/proxyauth')}`,
      ...Object.entries(imageEnv).map(([k, v]) => `${k}=${v}`),
      entryFile,
      ...cmd,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  t.teardown(() => killTree(proc));
  const pid1 = await poll(() => childOf(proc.pid ?? -1), 10_000);
  const port = Number(argsOf(runtime, 'EXPOSE')[0]);
  await waitFor(async () => proc.exitCode !== null || (await listensOn(pid1, port)), 30_000);
  t.equal(proc.exitCode, null, 'running', { output });
  t.ok(await listensOn(pid1, port), `listening on the exposed port ${port}`, { output });
  const status = await readFile(`/proc/${pid1}/status`, 'utf8');
  t.match(status, /^NSpid:\s+\d+\s+1$/m, 'the gateway is PID 1 of its namespace (exec, no shell)');
  t.match(status, /^Name:\s+node$/m, 'PID 1 is node itself, not a shell');
  if (isRoot) t.match(status, new RegExp(`^Uid:\\s+${uid}\\b`, 'm'), "as the image's user");
  t.match(output, /^ {2}password: \S{16,}$/m, 'the admin password, once, in the log');
  const configFile = join(imageEnv.PROXYAUTH_CONFIG_DIR ?? '', 'config.json');
  t.equal((await stat(configFile)).mode & 0o777, 0o600, 'config.json written in the volume');
  const store = join(imageEnv.PROXYAUTH_DATA_DIR ?? '', STORE_FILE);
  t.equal((await stat(store)).mode & 0o077, 0, 'the store in the data volume, private');
  t.match(status, /^Umask:\s+0077$/m, "umask 077, as the systemd unit's UMask=");
  // docker stop: SIGTERM to PID 1 only. Its handler drains; without one the kernel would drop it.
  process.kill(pid1, 'SIGTERM');
  const code = await Promise.race([exited, delay(20_000).then(() => 'timeout')]);
  t.equal(code, 0, 'a clean stop, exit 0', { output });
});

async function childOf(pid: number): Promise<number | undefined> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const first = Number(children.trim().split(/\s+/)[0]);
  return first > 0 ? first : undefined;
}

/** The first value `get` gives within `timeoutMs`; throws when there is none. */
async function poll<T>(get: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  let value: T | undefined;
  const found = async () => {
    value = await get();
    return value !== undefined;
  };
  if (await waitFor(found, timeoutMs)) return value as T;
  throw new Error(`nothing within ${timeoutMs} ms`);
}

/** Whether the process's network namespace has a TCP socket listening on `port`. */
async function listensOn(pid: number, port: number): Promise<boolean> {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const tables = await Promise.all(
    ['tcp', 'tcp6'].map((f) => readFile(`/proc/${pid}/net/${f}`, 'utf8').catch(() => '')),
  );
  return tables.some((table) =>
    table
      .split('\n')
      .slice(1)
      .some((row) => {
        const [, local, , state] = row.trim().split(/\s+/);
        return local?.endsWith(hexPort) === true && state === '0A'; // 0A: LISTEN
      }),
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function killTree(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  // SIGKILL to unshare's child (PID 1) ends its whole PID namespace.
  const pid1 = await childOf(proc.pid ?? -1);
  if (pid1 !== undefined) process.kill(pid1, 'SIGKILL');
  proc.kill('SIGKILL');
}
