// `--instructions --top N`: its option, a callgrind dump read function by function (synthetic
// files: compressed names, call arcs, relative positions, recursion levels), the perf map
// lookup (the last covering entry wins), names and categories, the aggregation by name, the
// median window and the rendered tables. The mode itself runs under valgrind: not here.
import t from 'tap';
import {
  type CallgrindProfile,
  categoryTotals,
  jitCategory,
  nameFunctions,
  namesOfAddresses,
  nativeCategory,
  parseCallgrindProfile,
  parsePerfMap,
  shortJitName,
  shortNativeName,
} from '../bench/callgrind-functions.js';
import {
  breakdownOf,
  medianWindowIndex,
  perfMapPath,
  perfNodeArgs,
  renderBreakdown,
} from '../bench/instructions.js';
import { parseBenchOptions } from '../bench/options.js';

t.test('--top: default, accepted, refused', async (t) => {
  t.equal(parseBenchOptions(['--instructions']).top, 0, 'off by default');
  t.equal(parseBenchOptions(['--instructions', '--top', '25']).top, 25);
  t.equal(parseBenchOptions(['--instructions', '--top=1']).top, 1);
  for (const value of ['0', '-3', '2.5', 'ten', '']) {
    t.throws(
      () => parseBenchOptions(['--instructions', `--top=${value}`]),
      { code: 'BENCH_BAD_OPTION', message: /--top must be an integer >= 1/ },
      `--top=${value}`,
    );
  }
  t.throws(
    () => parseBenchOptions(['--top', '10']),
    { code: 'BENCH_BAD_OPTION', message: /--top only go with --instructions/ },
    'without --instructions',
  );
  t.throws(() => parseBenchOptions(['--profile', '/tmp/p', '--top', '5']), {
    code: 'BENCH_BAD_OPTION',
    message: /only go with --instructions/,
  });
});

t.test('the node flags and the perf map path', async (t) => {
  t.same(perfNodeArgs('/run/x/callgrind-gateway'), [
    '--perf-basic-prof',
    '--logfile=/run/x/callgrind-gateway/v8.log',
  ]);
  t.equal(perfMapPath(4242), '/tmp/perf-4242.map');
});

/** A dump with a JIT caller, libc, node's C++ and a builtin; Ir sum to 1000. */
const DUMP = [
  '# callgrind format',
  'version: 1',
  'creator: callgrind-3.19.0',
  'pid: 4242',
  'part: 2',
  '',
  'positions: line',
  'events: Ir',
  'summary: 1000',
  '',
  'ob=(2) ???',
  'fl=(52) ???',
  'fn=(10) 0x000000000d0c6540',
  '0 100',
  'cob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6',
  'cfi=(7) ???',
  'cfn=(11) __memmove_avx_unaligned_erms',
  'calls=2 0',
  '0 40',
  '0 20',
  'cfn=(12) 0x000000000d0c6580',
  'calls=1 0',
  '0 60',
  '',
  'ob=(3)',
  'fl=(7)',
  'fn=(11)',
  '0 40',
  '',
  'ob=(2)',
  'fl=(52)',
  'fn=(12)',
  '0 60',
  '',
  'ob=(2)',
  'fl=(52)',
  "fn=(13) 0x000000000d0c6580'2",
  '0 5',
  '',
  'ob=(2)',
  'fn=(14) 0x0000000000001000',
  '0 7',
  '',
  'ob=(4) /usr/bin/node',
  'fl=(8) ???',
  'fn=(15) v8::internal::Heap::Scavenge(v8::internal::Heap*, int)',
  '10 300',
  '+2 100',
  'fi=(9) /src/inlined.h',
  '-1 50',
  'fe=(8)',
  '* 18',
  'fn=(16) Builtins_CallFunction_ReceiverIsAny',
  '0 200',
  "fn=(17) v8::internal::Heap::Scavenge(v8::internal::Heap*, int)'2",
  '0 100',
  '',
  'totals: 1000',
  '',
].join('\n');

t.test('a dump read function by function', async (t) => {
  const p = parseCallgrindProfile(DUMP, 'dump');
  t.equal(p.total, 1000);
  const self = Object.fromEntries(p.functions.map((f) => [`${f.object} ${f.name}`, f.self]));
  t.same(self, {
    '??? 0x000000000d0c6540': 120,
    '/usr/lib/x86_64-linux-gnu/libc.so.6 __memmove_avx_unaligned_erms': 40,
    '??? 0x000000000d0c6580': 60,
    "??? 0x000000000d0c6580'2": 5,
    '??? 0x0000000000001000': 7,
    '/usr/bin/node v8::internal::Heap::Scavenge(v8::internal::Heap*, int)': 468,
    '/usr/bin/node Builtins_CallFunction_ReceiverIsAny': 200,
    "/usr/bin/node v8::internal::Heap::Scavenge(v8::internal::Heap*, int)'2": 100,
  });
  t.equal(p.calls.length, 2, 'one arc per caller and callee');
  const arc = (callee: string) =>
    p.calls.find((c) => p.functions[c.callee]?.name === callee)?.instructions;
  t.equal(arc('__memmove_avx_unaligned_erms'), 40, "a call's cost is not its caller's self");
  t.equal(arc('0x000000000d0c6580'), 60);

  const two = parseCallgrindProfile(
    DUMP.replace('positions: line', 'positions: instr line')
      .replaceAll(/^(\d+|\+\d+|-\d+|\*) /gm, '0x1 $1 ')
      .replace('calls=2 0', 'calls=2 0x2 0'),
    'two positions',
  );
  t.equal(
    two.functions.reduce((s, f) => s + f.self, 0),
    1000,
    'positions: instr line',
  );

  t.throws(() => parseCallgrindProfile(DUMP.replace('fn=(11)\n', 'fn=(99)\n'), 'd'), {
    code: 'BENCH_CALLGRIND',
    message: /d:\d+: \(99\) used before it is defined/,
  });
  t.throws(() => parseCallgrindProfile(DUMP.replace('totals: 1000', 'totals: 1001'), 'd'), {
    code: 'BENCH_CALLGRIND',
    message: /add up to 1000, the dump's total is 1001/,
  });
  t.throws(() => parseCallgrindProfile(DUMP.replace('0 200', '0 2x0'), 'd'), {
    code: 'BENCH_CALLGRIND',
    message: /not a cost line/,
  });
  t.throws(() => parseCallgrindProfile(DUMP.replace('events: Ir', 'events: Dr Ir'), 'd'), {
    code: 'BENCH_CALLGRIND',
    message: /first event is not Ir/,
  });
});

t.test('the perf map: the last covering entry wins', async (t) => {
  const map = parsePerfMap(
    [
      'd0c6500 100 JS:~old file:///w/dist/a.js:1:1',
      'd0c6540 40 JS:*#onHead file:///w/dist/worker/h1-client.js:709:12',
      'not a line',
      'd0c6500 80 RegExp:^[a-z]+$',
      'd0c6580 10 Builtin:CallFunction',
      'd0c65', // cut short while written: still a line of two hex numbers? no name, skipped
      '',
    ].join('\n'),
  );
  t.equal(map.length, 4, 'malformed and cut lines skipped');
  t.same(map[1], {
    start: 0xd0c6540,
    size: 0x40,
    name: 'JS:*#onHead file:///w/dist/worker/h1-client.js:709:12',
  });
  const names = namesOfAddresses(
    map,
    [0xd0c6540, 0xd0c6590, 0xd0c657f, 0xd0c6580, 0xd0c6600, 0x10],
  );
  t.equal(names.get(0xd0c6540), 'RegExp:^[a-z]+$', 'covered by three: the last one');
  t.equal(names.get(0xd0c657f), 'RegExp:^[a-z]+$', 'last byte of the last cover');
  t.equal(names.get(0xd0c6580), 'Builtin:CallFunction', 'start of an entry');
  t.equal(
    names.get(0xd0c6590),
    'JS:~old file:///w/dist/a.js:1:1',
    'past the later entries: the one that still covers it',
  );
  t.equal(names.get(0xd0c6600), undefined, 'end is exclusive');
  t.equal(names.get(0x10), undefined, 'uncovered');
  t.equal(namesOfAddresses([], [1, 2]).size, 0);
});

t.test('names and categories', async (t) => {
  const root = '/work/instr29b';
  const onHead = `JS:*#onHead file://${root}/dist/worker/h1-client.js:709:12`;
  t.equal(shortJitName(onHead, root), '*#onHead dist/worker/h1-client.js:709:12');
  t.equal(shortJitName(onHead, `${root}/`), '*#onHead dist/worker/h1-client.js:709:12');
  t.equal(shortJitName('RegExp:^a+$', root), 'RegExp:^a+$');
  t.equal(jitCategory(onHead, root), 'gateway JS');
  t.equal(jitCategory(onHead, '/work/main'), 'other', "another checkout's dist/ is not this one's");
  t.equal(jitCategory('JS:^emit node:events:460:44', root), "Node's JS");
  t.equal(jitCategory(`JS:*request file://${root}/node_modules/undici/x.js:1:1`, root), 'other');
  t.equal(jitCategory('Builtin:CallFunction', root), 'V8 builtins');
  t.equal(jitCategory('BytecodeHandler:LdaZero', root), 'V8 builtins');
  t.equal(jitCategory('RegExp:^a+$', root), 'other');

  const node = '/usr/bin/node';
  t.equal(nativeCategory({ object: node, name: 'Builtins_KeyedLoadIC' }, node), 'V8 builtins');
  t.equal(
    nativeCategory({ object: node, name: 'v8::internal::Heap::Scavenge()' }, node),
    'V8/Node C++',
  );
  t.equal(nativeCategory({ object: '/opt/node/bin/node', name: 'uv_run' }, node), 'V8/Node C++');
  t.equal(
    nativeCategory(
      { object: '/x/node_modules/uWebSockets.js/uws_linux_x64_115.node', name: 'f' },
      node,
    ),
    'uWS',
  );
  t.equal(
    nativeCategory({ object: '/usr/lib/x86_64-linux-gnu/libc.so.6', name: 'malloc' }, node),
    'libc',
  );
  t.equal(nativeCategory({ object: '/lib/libstdc++.so.6', name: 'operator new' }, node), 'other');

  t.equal(
    shortNativeName('v8::internal::Heap::Scavenge(v8::internal::Heap*, int)'),
    'v8::internal::Heap::Scavenge',
  );
  t.equal(shortNativeName("v8::internal::Heap::Scavenge(int)'2"), 'v8::internal::Heap::Scavenge');
  t.equal(
    shortNativeName('(anonymous namespace)::Foo::bar(int) const'),
    '(anonymous namespace)::Foo::bar',
  );
  t.equal(
    shortNativeName('std::less<int>::operator()(int, int) const'),
    'std::less<int>::operator()',
  );
  t.equal(shortNativeName('malloc'), 'malloc');
});

t.test('functions named, summed by name, by category', async (t) => {
  const profile: CallgrindProfile = parseCallgrindProfile(DUMP, 'dump');
  const perfMap = parsePerfMap(
    [
      'd0c6500 30 JS:~stale file:///w/dist/gone.js:1:1',
      'd0c6540 80 JS:*#onHead file:///w/dist/worker/h1-client.js:709:12',
    ].join('\n'),
  );
  const named = nameFunctions(profile, { perfMap, root: '/w', node: '/usr/bin/node' });
  const byName = Object.fromEntries(named.map((f) => [f.name, f]));
  const onHead = byName['*#onHead dist/worker/h1-client.js:709:12'];
  t.equal(onHead?.self, 185, 'three addresses (one a recursion level) of one JS function, summed');
  t.equal(onHead?.category, 'gateway JS');
  t.equal(onHead?.inclusive, 225, 'its call to memmove counts; its calls to itself do not');
  t.equal(byName['v8::internal::Heap::Scavenge [node]']?.self, 568, 'recursion levels summed');
  t.equal(byName['0x0000000000001000 [???]']?.self, 7, 'uncovered: the hex stays');
  t.equal(byName['0x0000000000001000 [???]']?.category, 'other');
  t.equal(byName['__memmove_avx_unaligned_erms [libc.so.6]']?.category, 'libc');
  t.equal(named[0]?.name, 'v8::internal::Heap::Scavenge [node]', 'largest self first');
  t.equal(
    named.reduce((s, f) => s + f.self, 0),
    1000,
    'the names keep every instruction',
  );
  t.same(categoryTotals(named), [
    { category: 'gateway JS', self: 185 },
    { category: "Node's JS", self: 0 },
    { category: 'V8 builtins', self: 200 },
    { category: 'V8/Node C++', self: 568 },
    { category: 'uWS', self: 0 },
    { category: 'libc', self: 40 },
    { category: 'other', self: 7 },
  ]);

  const window = { requests: 10, instructions: 1000, perRequest: 100 };
  const d = breakdownOf(named, window, 2, 2, perfMap.length);
  t.same(
    d.self.map((s) => [s.name, s.perRequest, s.share]),
    [
      ['v8::internal::Heap::Scavenge [node]', 56.8, 0.568],
      ['Builtins_CallFunction_ReceiverIsAny [node]', 20, 0.2],
    ],
  );
  t.equal(d.inclusive[0]?.name, 'v8::internal::Heap::Scavenge [node]');
  t.equal(d.inclusive[1]?.perRequest, 22.5);
  t.equal(d.categories.length, 7);
  t.equal(d.unnamedPerRequest, 0.7);
  const text = renderBreakdown('this build', d).join('\n');
  t.match(
    text,
    '### this build: where the instructions go (window 2, the median: 100 instructions/request)',
  );
  t.match(text, '| instructions/request (self) | % | function |');
  t.match(text, '| 57 | 56.8 | v8::internal::Heap::Scavenge [node] |');
  t.match(text, '| 19 | 18.5 | gateway JS |');
  t.match(text, '| instructions/request (inclusive) | % | function |');
  const piped = breakdownOf(
    [{ name: 'RegExp:a|b', category: 'other', self: 10, inclusive: 10 }],
    window,
    1,
    1,
    1,
  );
  t.match(renderBreakdown('x', piped).join('\n'), '| RegExp:a\\|b |', 'a | in a name is escaped');
});

t.test('the median window', async (t) => {
  const w = (perRequest: number) => ({
    requests: 1,
    instructions: perRequest,
    perRequest,
    seconds: 1,
  });
  t.equal(medianWindowIndex([w(5), w(3), w(4)]), 2);
  t.equal(medianWindowIndex([w(5)]), 0);
  t.equal(medianWindowIndex([w(4), w(1), w(3), w(2)]), 3, 'even: the lower middle');
  t.throws(() => medianWindowIndex([]), { code: 'BENCH_INSTRUCTIONS' });
});
