import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { edgePids } from './helpers/process-tree.js';
import { type Echo, patternChunk, startUpstream } from './helpers/upstream.js';

const SIZE = 100 * 1024 * 1024;
const CHUNK = 64 * 1024;

const upstream = await startUpstream();
const gw: RunningGateway = await startGateway({
  config: { client_timeout: 60_000 },
  routes: `routes:\n  - prefix: /files\n    target: ${upstream.origin}\n`,
});
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

function expectedSha(size: number): string {
  const hash = createHash('sha256');
  for (let offset = 0; offset < size; offset += CHUNK)
    hash.update(patternChunk(offset, Math.min(CHUNK, size - offset)));
  return hash.digest('hex');
}

/** Peak resident memory of a process, in MiB (VmHWM); throws rather than return NaN. */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kB = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kB === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kB) / 1024;
}

const sha = expectedSha(SIZE);
// The edges from /proc, not from log lines: the memory test below must have something to
// measure, and must fail when it does not.
const edges = await edgePids(gw.proc.pid ?? -1);
const baseline = new Map<number, number>();
for (const pid of edges) baseline.set(pid, await peakRssMiB(pid));

async function download(path: string, t: Test): Promise<void> {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 200);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    hash.update(chunk);
  }
  t.equal(size, SIZE, 'every byte arrived');
  t.equal(hash.digest('hex'), sha, 'in order and intact');
}

t.test('100 MB download with Content-Length streams through', async (t) => {
  await download(`/files/bytes/${SIZE}`, t);
});

t.test('100 MB chunked download streams through', async (t) => {
  await download(`/files/chunked/${SIZE}`, t);
});

t.test('100 MB upload streams through', async (t) => {
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= SIZE) return controller.close();
      const length = Math.min(CHUNK, SIZE - offset);
      controller.enqueue(new Uint8Array(patternChunk(offset, length)));
      offset += length;
    },
  });
  const res = await fetch(`${gw.url}/files/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body,
    duplex: 'half',
  } as RequestInit);
  t.equal(res.status, 200);
  const echo = (await res.json()) as Echo;
  t.equal(echo.bodyBytes, SIZE);
  t.equal(echo.sha256, sha);
});

t.test('edges stay within bounded memory while streaming', async (t) => {
  t.equal(baseline.size, 2, 'both edges (num_instances: 2) measured before the transfers');
  t.same(await edgePids(gw.proc.pid ?? -1), edges, 'the same edges served every transfer');
  for (const [pid, before] of baseline) {
    const after = await peakRssMiB(pid);
    t.comment(
      `edge ${pid}: peak RSS ${before.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after`,
    );
    // Buffering one 100 MB body would add at least 100 MiB. Streaming adds chunk buffers plus
    // V8's garbage headroom: ~55-70 MiB measured here, and no more for 3 GB (it is a plateau).
    t.ok(after - before < 96, `edge ${pid} grew by ${(after - before).toFixed(0)} MiB`);
  }
});
