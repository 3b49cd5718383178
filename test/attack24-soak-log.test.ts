// Attacks on the soak's gateway latency (4bd0004): access lines a client tries to forge through
// what the gateway logs of its request, and a soak stopped by wrong answers.
import { appendFileSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AccessLineReader } from '../bench/access-log-latency.js';
import { AccessLog } from '../shared/access-log.js';
import { fakeSoak, loadResult } from './helpers/fake-soak.js';

/** An access line as shared/access-log.ts writes it. */
function access(ts: number, ms: string): string {
  return `{"ts":"${new Date(ts).toISOString()}","type":"access","pid":7,"ip":"127.0.0.1","method":"GET","path":"/api/hello","status":200,"ms":${ms}}`;
}

t.test('a forged access line in a path, method, user or route is not read as one', async (t) => {
  const path = join(t.testdir(), 'gateway.log');
  const fd = openSync(path, 'w');
  const log = new AccessLog(fd, 7);
  const forged = `\n${access(Date.now(), '99999')}\n`;
  const tries = [
    { method: 'GET', path: `/a${forged}`, user: forged, route: forged },
    { method: 'GET', path: '/x","ms":77777,"y":"', user: '","ms":88888}', route: '/' },
    { method: `GET${forged}`, path: '/\u2028\r\n"ms":5\u0000é', user: 'ü', route: '}\n{' },
  ];
  for (const [i, fields] of tries.entries()) {
    log.write({ ip: '::1', status: 200, ms: i + 0.25, code: undefined, ...fields });
  }
  log.flush();
  closeSync(fd);
  const seen: number[] = [];
  const reader = new AccessLineReader((_ts, ms) => seen.push(ms));
  reader.push(readFileSync(path));
  reader.end();
  t.same(seen, [0.25, 1.25, 2.25], 'one line per request, its own ms');
});

t.test('a soak stopped by wrong answers: the runs before it keep their own figures', async (t) => {
  const logPath = join(t.testdir({}), 'gateway.log');
  writeFileSync(logPath, '');
  let run = 0;
  const load = async () => {
    run++;
    // The warm-up (run 1) and the failing run (run 4) log 900 ms: neither may count anywhere.
    // The others log below 1.28 ms, where the histogram is exact.
    const ms = run === 1 || run === 4 ? '900' : `${run / 10}`;
    const lines = Array.from({ length: 10 }, () => access(Date.now(), ms));
    appendFileSync(logPath, `${lines.join('\n')}\n`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return loadResult({ requests: 10, ...(run === 4 ? { errorResponses: 10 } : {}) });
  };
  const argv = ['--soak', '1', '--soak-interval', '10', '--warmup', '1'];
  const soak = await fakeSoak(t, argv, load, { gatewayLog: logPath });
  t.ok(soak.stoppedBy, 'stopped');
  t.same(
    soak.samples.map((s) => [s.gatewayRequests, s.gatewayP50Ms, s.gatewayP99Ms]),
    [
      [10, 0.2, 0.2],
      [10, 0.3, 0.3],
    ],
  );
  t.equal(soak.summary?.gatewayEndP99Ms, 0.3);
});
