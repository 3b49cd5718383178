// `--instructions`: its option parsing (defaults, one gateway scenario, the combinations it
// refuses), the instruction total of a callgrind dump (synthetic files), the edge's command line
// under valgrind, the launcher's arguments, the windows' summary and the report's table. The
// mode itself runs the gateway under valgrind (minutes): no end-to-end test here.
import t from 'tap';
import {
  callgrindFilesIn,
  callgrindLauncher,
  callgrindTotal,
  isEdgeCommandLine,
} from '../bench/callgrind.js';
import {
  type InstructionsReport,
  renderInstructionsReport,
  summarizeWindows,
} from '../bench/instructions.js';
import { INSTRUCTIONS_CONNECTIONS, parseBenchOptions } from '../bench/options.js';
import { profileScenarioOf } from '../bench/profile-scenario.js';

t.test('--instructions: defaults and accepted values', async (t) => {
  const off = parseBenchOptions([]);
  t.equal(off.instructions, false, 'off by default');
  t.equal(off.connections, 64, 'the comparison keeps its 64 connections');
  const on = parseBenchOptions(['--instructions']);
  t.equal(on.instructions, true);
  t.equal(on.windows, 3);
  t.equal(on.windowRequests, 2000);
  t.equal(on.warmupRequests, 20000, 'V8 still tiers up after 5000');
  t.equal(on.connections, INSTRUCTIONS_CONNECTIONS, '8 connections unless given');
  t.equal(INSTRUCTIONS_CONNECTIONS, 8);
  t.equal(on.baseline, undefined);
  t.equal(profileScenarioOf(on.scenarios, '--instructions').name, 'gateway-auth-proxy');
  const given = parseBenchOptions([
    '--instructions',
    '--windows',
    '5',
    '--window-requests',
    '100',
    '--warmup-requests',
    '0',
    '--connections',
    '1',
    '--baseline',
    '/work/main',
    '--scenarios',
    'gateway-login',
  ]);
  t.equal(given.windows, 5);
  t.equal(given.windowRequests, 100);
  t.equal(given.warmupRequests, 0, 'no warm-up is allowed');
  t.equal(given.connections, 1, 'one connection (fewer than the default threads) is fine');
  t.equal(given.baseline, '/work/main');
  t.same(given.scenarios, ['gateway-login']);
});

t.test('--instructions: refused combinations', async (t) => {
  const refused: [string[], RegExp][] = [
    [['--soak', '1'], /neither --soak nor --profile/],
    [['--profile', '/tmp/p'], /neither --soak nor --profile/],
    [['--duration', '5'], /counts requests, not seconds: it does not take --duration/],
    [['--runs', '2', '--warmup', '1'], /does not take --runs, --warmup/],
    [['--threads', '1'], /does not take --threads/],
    [['--tool', 'wrk'], /does not take --tool/],
    [['--soak-interval', '10'], /does not take --soak-interval/],
    [['--windows', '0'], /--windows must be an integer >= 1, got 0/],
    [['--window-requests', '0'], /--window-requests must be an integer >= 1/],
    [['--window-requests', '1.5'], /--window-requests must be an integer >= 1/],
    [['--warmup-requests=-1'], /--warmup-requests must be an integer >= 0, got -1/],
    [['--connections', '0'], /--connections must be an integer >= 1/],
    [['--baseline', ''], /--baseline needs a directory/],
    [['--scenarios', 'nginx-proxy'], /--instructions --scenarios nginx-proxy: not a gateway/],
    [['--scenarios', 'baseline-auth-proxy'], /baseline-auth-proxy: not a gateway scenario/],
    [['--scenarios', 'gateway-nope'], /--instructions --scenarios gateway-nope: unknown/],
    [['--scenarios', 'gateway-login,gateway-auth-proxy'], /--instructions runs one scenario/],
  ];
  for (const [argv, message] of refused) {
    t.throws(
      () => parseBenchOptions(['--instructions', ...argv]),
      { code: 'BENCH_BAD_OPTION', message },
      argv.join(' '),
    );
  }
  for (const argv of [
    ['--windows', '2'],
    ['--window-requests', '10'],
    ['--warmup-requests', '1'],
  ]) {
    t.throws(
      () => parseBenchOptions(argv),
      { code: 'BENCH_BAD_OPTION', message: /only go with --instructions/ },
      `${argv.join(' ')} without --instructions`,
    );
  }
  t.throws(
    () => parseBenchOptions(['--profile', '/tmp/p', '--scenarios', 'a,b']),
    { code: 'BENCH_BAD_OPTION', message: /^--profile runs one scenario/ },
    "--profile's messages still name --profile",
  );
});

/** A dump as callgrind 3.19 writes it (header, cost lines, totals), Ir = `total`. */
function dump(total: string, extra = ''): string {
  return [
    '# callgrind format',
    'version: 1',
    'creator: callgrind-3.19.0',
    'pid: 4242',
    'cmd:  /usr/bin/node /srv/proxyauth/dist/worker/edge.js',
    'part: 2',
    '',
    'desc: Trigger: dump',
    '',
    'positions: line',
    'events: Ir',
    `summary: ${total}`,
    extra,
    'ob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6',
    'fn=(30) pthread_mutex_lock@@GLIBC_2.2.5',
    '80 3',
    '+4 2',
    '',
    `totals: ${total}`,
    '',
  ].join('\n');
}

t.test('the instruction total of a callgrind dump', async (t) => {
  t.equal(callgrindTotal(dump('812345678'), 'a'), 812_345_678, 'summary and totals agree');
  const totalsOnly = dump('5').replace('summary: 5\n', '');
  t.equal(callgrindTotal(totalsOnly, 'b'), 5, 'totals: alone');
  const summaryOnly = dump('7').replace('totals: 7\n', '');
  t.equal(callgrindTotal(summaryOnly, 'c'), 7, 'summary: alone (a file written still)');
  const twoEvents = dump('900 12').replace('events: Ir', 'events: Ir Dr');
  t.equal(callgrindTotal(twoEvents, 'd'), 900, 'the first number is Ir');
  t.equal(callgrindTotal('totals: 0\n', 'e'), 0, 'no events: line: Ir is the default');
  t.equal(callgrindTotal('summary: 31\r\n', 'f'), 31, 'CRLF');
  const bad: [string, RegExp][] = [
    ['# callgrind format\nevents: Ir\n', /^x: no totals: or summary: line/],
    ['', /no totals: or summary: line/],
    ['fn=(1) summary: 3\n', /no totals: or summary: line/],
    ['events: Ir\ntotals: \n', /the total is not a count of instructions/],
    ['events: Ir\ntotals: 1e9\n', /not a count of instructions: 1e9/],
    ['events: Ir\ntotals: -4\n', /not a count of instructions/],
    ['events: Ir\ntotals: 99999999999999999999\n', /not a count of instructions/],
    ['events: Dr Ir\ntotals: 5 6\n', /the first event is not Ir \(events: Dr Ir\)/],
  ];
  for (const [text, message] of bad) {
    t.throws(() => callgrindTotal(text, 'x'), { code: 'BENCH_CALLGRIND', message }, text);
  }
});

t.test("an edge's command line, with and without valgrind", async (t) => {
  const nul = (...args: string[]): string => `${args.join('\0')}\0`;
  t.ok(isEdgeCommandLine(nul('/usr/bin/node', '/srv/p/dist/worker/edge.js')));
  t.ok(isEdgeCommandLine(nul('node', '--cpu-prof', 'worker/edge.js')));
  t.ok(
    isEdgeCommandLine(
      nul(
        'valgrind.bin',
        '--tool=callgrind',
        '--trace-children=yes',
        '--callgrind-out-file=/tmp/r/callgrind.out.%p',
        '/usr/bin/node',
        '/srv/p/dist/worker/edge.js',
      ),
    ),
    'under valgrind',
  );
  t.notOk(isEdgeCommandLine(nul('/usr/bin/node', '/srv/p/dist/supervisor/cli.js')), 'supervisor');
  t.notOk(isEdgeCommandLine(nul('/usr/bin/node', '/srv/p/dist/worker/edge.js.map')));
  t.notOk(isEdgeCommandLine(nul('/usr/bin/node', '/srv/p/dist/worker/my-edge.js')));
  t.notOk(isEdgeCommandLine(''), 'an exited process reads empty');
});

t.test('the callgrind launcher', async (t) => {
  const files = callgrindFilesIn('/tmp/run/callgrind-gateway');
  t.equal(files.vgdbPrefix, '/tmp/run/callgrind-gateway/vgdb', 'vgdb pipes below the run dir');
  t.same(callgrindLauncher('/usr/bin/valgrind', files), [
    '/usr/bin/valgrind',
    '--tool=callgrind',
    '--trace-children=yes',
    '--instr-atstart=no',
    '--smc-check=all-non-file',
    '--vgdb-prefix=/tmp/run/callgrind-gateway/vgdb',
    '--callgrind-out-file=/tmp/run/callgrind-gateway/callgrind.out.%p',
  ]);
});

t.test('windows summarized and rendered, with a baseline', async (t) => {
  const window = (perRequest: number) => ({
    requests: 2000,
    instructions: perRequest * 2000,
    perRequest,
    seconds: 8,
  });
  const own = summarizeWindows(
    { label: 'this build', root: '/a' },
    [window(300_000), window(306_000), window(303_000)],
    61.2,
  );
  t.equal(own.median, 303_000);
  t.equal(own.min, 300_000);
  t.equal(own.max, 306_000);
  t.equal(own.spread.toFixed(4), (6000 / 303_000).toFixed(4));
  const base = summarizeWindows({ label: 'baseline', root: '/b' }, [window(290_000)], 50);
  t.equal(base.spread, 0, 'one window: no spread');
  t.throws(() => summarizeWindows({ label: 'x', root: '/x' }, [], 1), {
    code: 'BENCH_INSTRUCTIONS',
  });
  const report: InstructionsReport = {
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:02:00.000Z',
    machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, os: 'linux', node: 'v20', loadavg: [] },
    valgrind: 'valgrind-3.19.0',
    scenario: 'gateway-auth-proxy',
    parameters: {
      windows: 3,
      windowRequests: 2000,
      warmupRequests: 5000,
      connections: 8,
      edges: 1,
      top: 0,
    },
    builds: [own, base],
    ratio: own.median / base.median,
  };
  const text = renderInstructionsReport(report);
  t.match(text, '| build | window 1 | window 2 | window 3 | median | min–max (spread) | run s |');
  t.match(
    text,
    '| this build | 300,000 | 306,000 | 303,000 | 303,000 | 300,000–306,000 (2.0%) | 61 |',
  );
  t.match(text, '| baseline | 290,000 |  |  | 290,000 | 290,000–290,000 (0.0%) | 50 |');
  t.match(text, 'this build / baseline (medians): 1.0448');
  const alone = renderInstructionsReport({ ...report, builds: [own], ratio: undefined });
  t.notMatch(alone, /baseline/);
});
