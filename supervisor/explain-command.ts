import { fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ExplainSpec } from '../shared/explain-spec.js';
import type { Dirs } from './dirs.js';
import type { ExplainArgs } from './explain-args.js';

/** Where explain's worker is: it runs the edge's code, which the supervisor never imports. */
const WORKER = fileURLToPath(new URL('../worker/explain-main.js', import.meta.url));

async function readAll(input: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/**
 * `proxyauth explain`: reads the body (and a `--token -`), then hands the request to the
 * worker (worker/explain-main.ts) over IPC, never in its argv, and returns its exit status.
 * Output goes straight from the worker to this process's stdout and stderr.
 */
export async function explainCommand(
  dirs: Dirs,
  args: ExplainArgs & { json: boolean },
  io: { input: Readable; err: Writable },
): Promise<number> {
  let body: Buffer | undefined;
  let token = args.token;
  try {
    if (args.bodyFile !== undefined) {
      body = args.bodyFile === '-' ? await readAll(io.input) : await readFile(args.bodyFile);
    }
  } catch (err) {
    const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    io.err.write(`proxyauth: EXPLAIN_BODY_UNREADABLE: --body ${args.bodyFile}: ${cause}\n`);
    return 1;
  }
  if (token === '-') token = (await readAll(io.input)).toString('utf8').trim();
  const spec: ExplainSpec = {
    configDir: dirs.configDir,
    dataDir: dirs.dataDir,
    method: args.method,
    target: args.target,
    headers: args.headers,
    body: body?.toString('base64'),
    credential:
      args.user !== undefined
        ? { kind: 'user', user: args.user }
        : token !== undefined
          ? { kind: 'token', token }
          : undefined,
    viaCookie: args.cookie,
    ip: args.ip,
    json: args.json,
  };
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code) => resolve(code ?? 1));
  });
  child.send(spec);
  return exited;
}
