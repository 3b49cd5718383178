// `--profile`: the summary of the gateway's .cpuprofile files (on a small synthetic profile whose
// every count is known), and its option parsing (one gateway scenario).
import t from 'tap';
import { parseBenchOptions } from '../bench/options.js';
import { profileNodeArgs } from '../bench/profile.js';
import { profiledGatewayOf, profileScenarioOf } from '../bench/profile-scenario.js';
import {
  asCpuProfile,
  type CpuProfile,
  type CpuProfileNode,
  functionLabel,
  isEdgeProfile,
  profileThreadOf,
  renderProfileSummary,
  summarizeProfiles,
} from '../bench/profile-summary.js';

const DIST = 'file:///srv/proxyauth/dist';

function node(
  id: number,
  functionName: string,
  url: string,
  children: number[] = [],
  lineNumber = 0,
): CpuProfileNode {
  return { id, callFrame: { functionName, url, lineNumber, columnNumber: 0 }, children };
}

// (root)
// ├ (idle) 2
// ├ main edge.js 3
// │ ├ handle dispatch.js 4
// │ │ └ walk x.js 5
// │ │   └ walk x.js 8 (recursion: the same function)
// │ └ send uws-io.js 7         -> uWS native (V8 charges uWS calls to their caller)
// │   └ end [native] 9          -> uWS native (its nearest caller with a url)
// │   └ encode node:buffer 14
// │     └ write [native] 15     -> node:internal (its nearest caller with a url)
// ├ (garbage collector) 10
// ├ (program) 11
// ├ request node_modules/undici 12
// └ processTicks node:internal 13
const NODES: CpuProfileNode[] = [
  node(1, '(root)', '', [2, 3, 10, 11, 12, 13]),
  node(2, '(idle)', ''),
  node(3, 'main', `${DIST}/worker/edge.js`, [4, 7]),
  node(4, 'handle', `${DIST}/worker/dispatch.js`, [5], 41),
  node(5, 'walk', `${DIST}/shared/x.js`, [8], 9),
  node(8, 'walk', `${DIST}/shared/x.js`, [], 9),
  node(7, 'send', `${DIST}/worker/uws-io.js`, [9, 14]),
  node(9, 'end', ''),
  node(14, 'encode', 'node:buffer', [15]),
  node(15, 'write', ''),
  node(10, '(garbage collector)', ''),
  node(11, '(program)', ''),
  node(12, 'request', 'file:///srv/proxyauth/node_modules/undici/lib/dispatcher/client.js'),
  node(13, 'processTicks', 'node:internal/process/task_queues'),
];

const START = 1_000_000;
// One warm-up sample (at START+100, before the cut at START+150), then the timed run's
// samples 100 µs apart from START+200, then one after the stop (past the window's end).
const TIMED = [2, 2, 8, 8, 9, 10, 11, 12, 13, 4, 15, 7];
const SAMPLES = [8, ...TIMED, 12];
const PROFILE: CpuProfile = {
  nodes: NODES,
  startTime: START,
  endTime: START + 100 * (SAMPLES.length + 1),
  samples: SAMPLES,
  timeDeltas: SAMPLES.map(() => 100),
};
const WINDOW = { fromUs: START + 150, toUs: START + 100 * (TIMED.length + 1) + 50 };

t.test('edge profiles are told apart from the supervisor and worker threads', async (t) => {
  t.ok(isEdgeProfile(PROFILE), 'a frame of worker/edge.js');
  const supervisor: CpuProfile = {
    ...PROFILE,
    nodes: [node(1, '(root)', '', [2]), node(2, 'main', `${DIST}/supervisor/cli.js`)],
  };
  t.notOk(isEdgeProfile(supervisor), 'the supervisor');
  const thread: CpuProfile = {
    ...PROFILE,
    nodes: [node(1, '(root)', '', [2]), node(2, 'verify', `${DIST}/crypto-pool/worker.js`)],
  };
  t.notOk(isEdgeProfile(thread), 'a worker thread');
  t.same(profileThreadOf('CPU.20261201.061024.14847.1.002.cpuprofile'), {
    pid: 14847,
    threadId: 1,
  });
  t.same(profileThreadOf('CPU.20261201.061022.14835.0.001.cpuprofile'), {
    pid: 14835,
    threadId: 0,
  });
  t.equal(profileThreadOf('mine.cpuprofile'), undefined, 'a name of --cpu-prof-name');
  t.throws(() => asCpuProfile({ nodes: [] }, 'x.cpuprofile'), /x\.cpuprofile: not a V8/);
  t.throws(() => asCpuProfile({ ...PROFILE, timeDeltas: [1] }, 'y'), TypeError);
  t.equal(asCpuProfile(JSON.parse(JSON.stringify(PROFILE)), 'z').samples.length, SAMPLES.length);
});

t.test('summary: warm-up and stop cut, idle apart, self and category shares', async (t) => {
  const s = summarizeProfiles([PROFILE], WINDOW);
  t.equal(s.samplesOutside, 2, 'the warm-up sample and the one after the stop');
  t.equal(s.idleSamples, 2, '(idle) counted apart');
  t.equal(s.busySamples, 10, 'the other timed samples');
  const pct = (n: number) => (n * 100) / 10;
  const self = Object.fromEntries(s.topSelf.map((r) => [r.name, r.percent]));
  t.same(self, {
    'walk (shared/x.js:10)': pct(2),
    'end [native]': pct(1),
    '(garbage collector)': pct(1),
    '(program)': pct(1),
    'request (undici/lib/dispatcher/client.js:1)': pct(1),
    'processTicks (node:internal/process/task_queues:1)': pct(1),
    'handle (worker/dispatch.js:42)': pct(1),
    'write [native]': pct(1),
    'send (worker/uws-io.js:1)': pct(1),
  });
  t.equal(s.topSelf[0]?.name, 'walk (shared/x.js:10)', 'largest first');
  t.notOk('(idle)' in self, 'idle is in no list');
  const categories = Object.fromEntries(s.categories.map((r) => [r.name, r.samples]));
  t.same(categories, {
    'gateway code': 3,
    'uWS native (from uws-io.js)': 2,
    'Argon2 native (from password.js)': 0,
    piscina: 0,
    undici: 1,
    'node:internal': 2,
    GC: 1,
    program: 1,
    other: 0,
  });
  const total = s.categories.reduce((sum, c) => sum + c.percent, 0);
  t.ok(Math.abs(total - 100) < 1e-9, 'categories add up to the busy samples');
  const all = summarizeProfiles([PROFILE]);
  t.equal(all.samplesOutside, 0, 'no window: every sample');
  t.equal(all.busySamples, 12, 'the warm-up sample and the last one are busy');
});

t.test('inclusive time counts a function once per stack', async (t) => {
  const s = summarizeProfiles([PROFILE], WINDOW);
  const inclusive = Object.fromEntries(s.topInclusive.map((r) => [r.name, r.samples]));
  // walk is twice on the stack of each of its 2 samples: counted 2, not 4.
  t.equal(inclusive['walk (shared/x.js:10)'], 2);
  t.equal(inclusive['handle (worker/dispatch.js:42)'], 3, 'its own sample and walk twice');
  t.equal(inclusive['main (worker/edge.js:1)'], 6, 'walk ×2, end, handle, write, send');
  t.equal(inclusive['send (worker/uws-io.js:1)'], 3);
  t.equal(inclusive['encode (node:buffer:1)'], 1);
  t.notOk(
    Object.keys(inclusive).some((k) => k.startsWith('(root)')),
    'the root is no function',
  );
  t.ok(
    s.topInclusive.every((r) => r.percent <= 100),
    'no share above 100%: nothing counted twice in a sample',
  );
  t.equal(s.topInclusive[0]?.name, 'main (worker/edge.js:1)');
});

t.test('profiles of several edges add up by function', async (t) => {
  const s = summarizeProfiles([PROFILE, PROFILE], WINDOW);
  t.equal(s.profiles, 2);
  t.equal(s.busySamples, 20);
  t.equal(s.topSelf.find((r) => r.name === 'walk (shared/x.js:10)')?.samples, 4);
  t.equal(s.topSelf.find((r) => r.name === 'walk (shared/x.js:10)')?.percent, (4 * 100) / 20);
  t.equal(summarizeProfiles([PROFILE], WINDOW, 3).topSelf.length, 3, 'the top list is cut');
});

t.test('the markdown summary says how the sampler counts and lists every section', async (t) => {
  const s = summarizeProfiles([PROFILE], WINDOW);
  const md = renderProfileSummary(
    [
      { group: 'edge main', summary: s },
      { group: 'supervisor', summary: summarizeProfiles([PROFILE], WINDOW, 2) },
    ],
    {
      scenario: 'gateway-login',
      files: [
        { name: 'CPU.1.cpuprofile', group: 'edge main' },
        { name: 'CPU.2.cpuprofile', group: 'supervisor' },
        { name: 'CPU.3.cpuprofile', group: undefined },
      ],
      intervalUs: 1000,
      warmupSec: 1,
      durationSec: 3,
      requestsPerSec: 12345.6,
      requests: 5,
      threadTable: '## CPU per request by thread (timed run)\n',
    },
  );
  t.match(md, /^# CPU profile of the gateway, gateway-login\n/);
  t.match(md, /wall time on the thread: time the kernel spends in a syscall/);
  t.match(md, /- edges' main threads: 1 \(CPU\.1\.cpuprofile\)/);
  t.match(md, /- edges' worker threads: 0 \(none\)/);
  t.match(md, /- supervisor: 1 \(CPU\.2\.cpuprofile\); left out: 1 \(CPU\.3\.cpuprofile\)/);
  t.match(md, /12,346 req\/s under the profiler, 5 requests/);
  t.ok(
    md.indexOf('## CPU per request by thread') < md.indexOf("## Edges' main threads"),
    'the thread table comes before the sections',
  );
  t.ok(md.indexOf("## Edges' main threads") < md.indexOf('## Supervisor (main thread)'));
  t.notOk(md.includes("## Edges' worker threads"), 'no section without profiles');
  // 10 busy samples of 1000 µs over 5 requests.
  t.match(md, /idle 2 \(16\.7%, excluded\), busy 10 \(2000 µs\/request of sampled busy time\)/);
  t.match(md, /\| gateway code \| 3 \| 30\.0 \|/);
  t.match(md, /### Top 9 functions by self time/);
  t.match(md, /### Top 2 functions by self time/, "the supervisor's shorter list");
  t.match(md, /by inclusive time \(counted once per stack\)/);
  t.match(md, /\| main \(worker\/edge\.js:1\) \| 6 \| 60\.0 \|/);
  t.equal(
    functionLabel({ functionName: '', url: `${DIST}/worker/a.js`, lineNumber: 2 }),
    '(anonymous) (worker/a.js:3)',
  );
  t.equal(
    functionLabel({
      functionName: 'run',
      url: 'file:///srv/proxyauth/node_modules/piscina/dist/index.js',
      lineNumber: 9,
    }),
    'run (piscina/dist/index.js:10)',
    "a package's own dist/ stays in its label",
  );
});

t.test(
  "a pool thread: Argon2's native time, piscina, and the wait for a task as idle",
  async (t) => {
    const PISCINA = 'file:///srv/proxyauth/node_modules/piscina/dist/worker.js';
    const nodes = [
      node(1, '(root)', '', [2, 5]),
      node(2, 'atomicsWaitLoop', PISCINA, [3], 125),
      node(3, 'onMessage', PISCINA, [4], 168),
      node(4, 'verifyPasswordSync', `${DIST}/crypto-pool/password.js`, [6], 34),
      node(6, 'verifySync', ''),
      node(5, 'postMessage', ''),
    ];
    // Waiting in Atomics.wait ×3, Argon2 ×4 (2 of them in its native frame), piscina ×1, a
    // native frame without any caller ×1.
    const samples = [2, 2, 2, 4, 4, 6, 6, 3, 5];
    const thread: CpuProfile = {
      nodes,
      startTime: 0,
      endTime: 100,
      samples,
      timeDeltas: samples.map(() => 10),
    };
    const s = summarizeProfiles([thread]);
    t.equal(s.idleSamples, 3, "atomicsWaitLoop's self time is the wait for a task");
    t.equal(s.busySamples, 6);
    const categories = Object.fromEntries(s.categories.map((r) => [r.name, r.samples]));
    t.equal(categories['Argon2 native (from password.js)'], 4);
    t.equal(categories.piscina, 1);
    t.equal(categories.other, 1, 'a native frame with no caller');
    t.equal(categories['gateway code'], 0, 'password.js is not counted as gateway code');
  },
);

t.test('--profile parses and takes one gateway scenario, no other mode', async (t) => {
  t.equal(parseBenchOptions([]).profileDir, undefined, 'off by default');
  const on = parseBenchOptions(['--profile', '/tmp/p', '--duration', '5', '--warmup', '2']);
  t.equal(on.profileDir, '/tmp/p');
  t.equal(on.durationSec, 5);
  t.equal(on.warmupSec, 2);
  t.equal(profileScenarioOf(on.scenarios).name, 'gateway-auth-proxy', 'the default');
  for (const name of [
    'gateway-login',
    'gateway-features-on',
    'gateway-no-token',
    'gateway-balanced',
    'gateway-csrf-page',
    'gateway-one-edge',
  ]) {
    const one = parseBenchOptions(['--profile', '/tmp/p', '--scenarios', name]);
    t.equal(profileScenarioOf(one.scenarios).name, name, `${name} is accepted`);
  }
  const login = profiledGatewayOf(profileScenarioOf(['gateway-login']).service);
  t.ok(login?.features.ratelimitAuth, "gateway-login's service keeps its ratelimit_auth");
  t.equal(profiledGatewayOf('gateway-one-edge')?.instances, 1, 'gateway-one-edge keeps its 1 edge');
  t.equal(profiledGatewayOf('gateway-balanced')?.balanced, true);
  t.equal(profiledGatewayOf('nginx'), undefined);
  const refused: [string[], RegExp][] = [
    [['--scenarios', 'nginx-proxy'], /nginx-proxy: not a gateway scenario/],
    [['--scenarios', 'raw-argon2'], /raw-argon2: not a gateway scenario/],
    [['--scenarios', 'baseline-auth-proxy'], /baseline-auth-proxy: not a gateway scenario/],
    [['--scenarios', 'upstream-direct'], /not a gateway scenario; it takes one of gateway-auth/],
    [['--scenarios', 'gateway-nope'], /gateway-nope: unknown/],
    [['--scenarios', 'gateway-login,gateway-auth-proxy'], /one scenario at a time: .* got 2/],
    [['--baseline', '/tmp'], /neither --baseline nor --soak/],
    [['--soak', '1'], /neither --baseline nor --soak/],
  ];
  for (const [argv, message] of refused) {
    t.throws(
      () => parseBenchOptions(['--profile', '/tmp/p', ...argv]),
      { code: 'BENCH_BAD_OPTION', message },
      argv.join(' '),
    );
  }
  for (const argv of [['--profile', ''], ['--profile']]) {
    t.throws(
      () => parseBenchOptions(argv),
      { code: /BENCH_BAD_OPTION|ERR_PARSE_ARGS/ },
      argv.join(' '),
    );
  }
  t.same(profileNodeArgs('/tmp/p'), [
    '--cpu-prof',
    '--cpu-prof-dir',
    '/tmp/p',
    '--cpu-prof-interval',
    '1000',
  ]);
});
