// The soak's heap sampling (bench/edge-heap.ts): a real node process started with the report
// flags is signalled and its report read; no gateway and no load.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { edgesHeap, heapReportArgs, parseHeapReport } from '../bench/edge-heap.js';
import { edgesMemoryLine } from '../bench/soak.js';
import { type SoakSample, slopePerMinute, summarizeSoak } from '../bench/soak-report.js';

/** A node process that holds `holdMiB` of numbers in its heap and waits, with the report flags. */
async function holder(t: Test, dir: string, holdMiB: number) {
  const code = [
    // Doubles, 8 bytes each in one backing store: 131,072 per MiB.
    `globalThis.held = Array.from({ length: ${holdMiB * 131_072} }, (_, i) => i + 0.5);`,
    "process.stdout.write('ready\\n');",
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const child = spawn(process.execPath, [...heapReportArgs(dir), '-e', code], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await once(child.stdout, 'data');
  return child.pid as number;
}

t.test('a signalled process reports its heap, and the report is removed', async (t) => {
  const dir = t.testdir();
  const [small, big] = [await holder(t, dir, 1), await holder(t, dir, 24)];
  const heaps = await edgesHeap([small, big, 999_999_999], dir);
  t.same(Object.keys(heaps).sort(), [String(small), String(big)].sort(), 'a gone pid is left out');
  const [s, b] = [heaps[String(small)], heaps[String(big)]];
  if (s === undefined || b === undefined) throw new Error('no heap');
  t.ok(s.usedBytes > 1 << 20 && s.usedBytes <= s.totalBytes, 'used within total');
  t.ok(b.usedBytes - s.usedBytes > 16 << 20, `the held array shows (${b.usedBytes - s.usedBytes})`);
  t.same(readdirSync(dir), [], 'reports deleted once read');
  const stale = join(dir, `report.20200101.000000.${small}.0.001.json`);
  writeFileSync(
    stale,
    JSON.stringify({ javascriptHeap: { usedMemory: 1, totalMemory: 2, externalMemory: 0 } }),
  );
  t.not((await edgesHeap([small], dir))[String(small)]?.usedBytes, 1, 'a late report is not read');
  t.same(readdirSync(dir), [], 'and is deleted');
  const again = await edgesHeap([small], dir);
  t.ok(again[String(small)], 'a second report is read too');
});

t.test('a pid that writes no report is left out once the wait ends', async (t) => {
  const dir = t.testdir();
  // Ignores the signal and writes nothing: the flags are missing.
  const child = spawn(
    process.execPath,
    [
      '-e',
      "process.on('SIGUSR2', () => {}); setInterval(() => {}, 1000); process.stdout.write('r')",
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await once(child.stdout, 'data');
  const started = Date.now();
  t.same(await edgesHeap([child.pid as number], dir, 300), {});
  t.ok(Date.now() - started < 2000, 'the wait is bounded');
});

t.test('parseHeapReport reads javascriptHeap and refuses partial text', async (t) => {
  const report = {
    header: { processId: 1 },
    javascriptHeap: { usedMemory: 10, totalMemory: 20, externalMemory: 3, heapSpaces: {} },
  };
  const text = JSON.stringify(report);
  t.same(parseHeapReport(text), { usedBytes: 10, totalBytes: 20, externalBytes: 3 });
  t.equal(parseHeapReport(text.slice(0, text.length - 5)), undefined, 'half written');
  t.equal(parseHeapReport('null'), undefined);
  t.equal(parseHeapReport('{"javascriptHeap":{"usedMemory":"1"}}'), undefined);
});

t.test('soak lines and summary carry the heap; a missing heap is flagged', async (t) => {
  const mib = 1 << 20;
  const heap = (used: number) => ({
    usedBytes: used * mib,
    totalBytes: 40 * mib,
    externalBytes: mib,
  });
  const sample = (elapsedSec: number, heaps: SoakSample['edgesHeap']): SoakSample => ({
    elapsedSec,
    durationSec: 30,
    startedAt: new Date(Date.UTC(2026, 11, 1, 19, 0, elapsedSec - 30)).toISOString(),
    endedAt: new Date(Date.UTC(2026, 11, 1, 19, 0, elapsedSec)).toISOString(),
    edgesRssKiB: { '10': 100 * 1024, '11': 120 * 1024 },
    edgesHeap: heaps,
    requestsPerSec: 1000,
    latencyP99Ms: 5,
  });
  const first = sample(30, { '10': heap(20), '11': heap(20) });
  t.equal(
    edgesMemoryLine(first),
    'edges (MiB) 10: RSS 100.0, heap 20.0 used / 40.0 total; 11: RSS 120.0, heap 20.0 used / 40.0 total',
  );
  const late = sample(60, { '10': heap(25) });
  t.match(edgesMemoryLine(late), /11: RSS 120\.0, heap \?$/);
  const last = sample(90, { '10': heap(25), '11': heap(25) });
  const summary = summarizeSoak([first, late, last]);
  t.equal(summary?.heapUsedGrowthPercent, 25);
  t.equal(summary?.heapTotalGrowthPercent, 0);
  t.equal(summary?.heapMissing, true);
  t.equal(summarizeSoak([first, last])?.heapMissing, false);
});

t.test('the trend is the least-squares slope per minute, not start against end', async (t) => {
  const line = [0, 1, 2, 3].map((i) => ({ sec: 30 * i, value: 10 + i }));
  t.equal(slopePerMinute(line), 2, '+1 per 30 s');
  // A noisy flat series that ends high: start vs end says +20%, the trend about nothing.
  const noisy = [10, 13, 7, 12, 8, 11, 9, 12].map((value, i) => ({ sec: 30 * i, value }));
  const flat = slopePerMinute(noisy) ?? Number.NaN;
  t.ok(Math.abs(flat) < 0.1, `flat (${flat})`);
  // One point has no trend: undefined, not a flat 0 (the report printed `+0.00/min`).
  t.equal(slopePerMinute(line.slice(0, 1)), undefined);
  t.equal(slopePerMinute([]), undefined);
  t.equal(slopePerMinute([line[0]!, line[0]!]), undefined, 'two points at one time');
});
