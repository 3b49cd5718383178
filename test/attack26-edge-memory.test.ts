// Attack on the hidden classes of upstream header records (worker/h1-client.ts HeaderRecord):
// each new header name gives a record's shape a new V8 map. An upstream that answers with
// fresh names every time makes the edge build map after map; they must be collected like the
// records, so the edge's memory stays bounded however many such answers pass. One edge with a
// 96 MiB old space runs 32,000 answers of 24 fresh names each (768,000 maps and names: kept,
// they would be well over 100 MiB): it must answer every one without being restarted. Its RSS
// and heap (a diagnostic report on SIGUSR2, as the soak reads it) are printed, not judged: the
// heap's used figure counts garbage not yet collected and moves with the GC's timing.
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { edgesHeap, heapReportArgs } from '../bench/edge-heap.js';
import { startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { edgePids } from './helpers/process-tree.js';
import { routesYaml } from './helpers/routes-yaml.js';

const NAMES = 24;
let serial = 0;

/** A head of NAMES header names no answer used before. */
function freshHead(): string {
  let head = '';
  for (let i = 0; i < NAMES; i++) head += `x-${(serial++).toString(36)}-${i}: v\r\n`;
  return head;
}

const FIXED = Array.from({ length: NAMES }, (_, i) => `x-fixed-${i}: v\r\n`).join('');

const upstream = await startHostileUpstream((req) => ({
  chunks: [
    `HTTP/1.1 200 OK\r\n${req.target.startsWith('/pub/fresh') ? freshHead() : FIXED}content-length: 2\r\n\r\nok`,
  ],
}));
const reports = await mkdtemp(join(tmpdir(), 'att26-heap-'));
const gw = await startGateway({
  config: { num_instances: 1 },
  routes: routesYaml(upstream.origin, [{ prefix: '/pub', secure: false }]),
  env: {
    NODE_OPTIONS: [...heapReportArgs(reports), '--max-old-space-size=96'].join(' '),
    PROXYAUTH_LOG_LEVEL: 'warn',
  },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
  await rm(reports, { recursive: true, force: true });
});

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
t.teardown(() => agent.destroy());

function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** `n` GETs of `path`, 8 at a time; the count of 200s and the ms it took. */
async function load(path: string, n: number): Promise<{ ok: number; ms: number }> {
  const started = performance.now();
  let next = 0;
  let ok = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      if ((await get(path)) === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { ok, ms: performance.now() - started };
}

async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN') * 1024;
}

const MiB = 1024 * 1024;

t.test('fresh names in every answer: the edge’s memory stays bounded', async (t) => {
  const [edge] = await edgePids(gw.proc.pid!);
  if (edge === undefined) throw new Error('no edge');
  t.equal((await load('/pub/fixed', 2000)).ok, 2000);
  const samples: string[] = [];
  const sample = async () => {
    const heap = (await edgesHeap([edge], reports))[String(edge)];
    samples.push(
      `RSS ${((await rssOf(edge)) / MiB).toFixed(0)} heap ${((heap?.usedBytes ?? 0) / MiB).toFixed(0)}`,
    );
  };
  await sample();
  let ok = 0;
  for (let round = 0; round < 4; round++) {
    ok += (await load('/pub/fresh', 8000)).ok;
    await sample();
  }
  t.comment(`MiB after 0, 8k, 16k, 24k, 32k answers: ${samples.join(' | ')}`);
  t.equal(ok, 32_000, 'every answer relayed');
  t.same(await edgePids(gw.proc.pid!), [edge], 'the same edge: never out of memory');
  t.equal(serial, 32_000 * NAMES, 'every answer had names of its own');
});
