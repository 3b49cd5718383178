// The recording pieces of `proxyauth explain`: traced steps and features, the synthetic uWS
// request and the recording response (read through the edge's own openExchange), and the
// filter refusals' operator-only reason, which never reaches the client's body.

import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import { errorBody, GatewayError, refusal } from '../shared/errors.js';
import { RecordingResponse, SyntheticRequest } from '../worker/explain-exchange.js';
import { StepTracer, tracedStep, traceFeatures } from '../worker/explain-trace.js';
import { compileRoutePipeline, type RouteFeature, type Step } from '../worker/pipeline.js';
import { ROUTE_FEATURES } from '../worker/route-features.js';
import { openExchange, readBody, sendJson } from '../worker/uws-io.js';

const SECRET = 'explain-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const FILES = { config: '/virtual/config.json', routes: '/virtual/routes.yml' };
const CTX = {} as never;

t.test('a traced step records passed, refused (code, detail, reason) and waited', async (t) => {
  const tracer = new StepTracer();
  const pass = tracer.add('/r', 'a');
  t.equal(pass.verdict, 'not reached', 'compiled, not run yet');
  tracedStep(() => undefined, pass)(CTX);
  t.equal(pass.verdict, 'passed');

  const refuse = tracer.add('/r', 'b');
  const err = new GatewayError('FILTER_DENIED', { detail: 'shown', reason: 'operator only' });
  t.throws(
    () =>
      tracedStep(() => {
        throw err;
      }, refuse)(CTX),
    err,
    'the refusal is thrown on, unchanged',
  );
  t.match(refuse, {
    verdict: 'refused',
    code: 'FILTER_DENIED',
    detail: 'shown',
    reason: 'operator only',
  });

  const waited = tracer.add('/r', 'c');
  await tracedStep(() => Promise.resolve(), waited)(CTX);
  t.equal(waited.verdict, 'passed after waiting');

  const late = tracer.add('/r', 'd');
  await t.rejects(
    tracedStep(() => Promise.reject(refusal('RATE_LIMITED')), late)(CTX) as Promise<void>,
  );
  t.match(late, { verdict: 'refused', code: 'RATE_LIMITED' });

  const broken = tracer.add('/r', 'e');
  t.throws(() =>
    tracedStep(() => {
      throw new Error('bug');
    }, broken)(CTX),
  );
  t.equal(broken.code, 'INTERNAL', 'anything but a GatewayError is an internal error');
  t.same(
    tracer.stepsOf('/r').map((s) => s.feature),
    ['a', 'b', 'c', 'd', 'e'],
  );
  t.same(tracer.stepsOf('/other'), []);
});

t.test('traced features add the same steps, in the same order, recorded per route', async (t) => {
  const { config, routes } = parseConfig(
    { secret: SECRET, users: [] },
    {
      routes: [
        { prefix: '/all', target: 'http://127.0.0.1:1', username: ['a'], allow_methods: ['GET'] },
        { prefix: '/pub', target: 'http://127.0.0.1:1', secure: false },
      ],
    },
    FILES,
  );
  const tracer = new StepTracer();
  const traced = traceFeatures(ROUTE_FEATURES, tracer);
  t.same(
    traced.map((f) => f.name),
    ROUTE_FEATURES.map((f) => f.name),
  );
  for (const route of routes) {
    const plain = compileRoutePipeline(route, config, ROUTE_FEATURES).steps.length;
    t.equal(compileRoutePipeline(route, config, traced).steps.length, plain, route.prefix);
  }
  t.same(
    tracer.stepsOf('/all').map((s) => s.feature),
    ['allowed-methods', 'credential', 'user-list'],
  );
  t.same(
    tracer.stepsOf('/pub').map((s) => s.feature),
    ['credential'],
  );
  // The wrapped step is the feature's own: order of calls is kept.
  const calls: string[] = [];
  const feature = (name: string): RouteFeature => ({
    name,
    compile: (b) => b.step((() => void calls.push(name)) as Step),
  });
  const own = traceFeatures([feature('x'), feature('y')], new StepTracer());
  for (const step of compileRoutePipeline(routes[0]!, config, own).steps) step(CTX);
  t.same(calls, ['x', 'y']);
});

t.test('the synthetic request reads through openExchange as uWS would give it', async (t) => {
  const req = new SyntheticRequest('get', '/a/b?x=1&y=2', [
    ['Host', 'gw.example'],
    ['X-Thing', 'one'],
    ['Content-Length', '5'],
  ]);
  const res = new RecordingResponse('10.1.2.3', Buffer.from('hello'));
  const ex = openExchange(res, req);
  t.equal(ex.method, 'GET', 'upper-cased by the edge');
  t.equal(ex.url, '/a/b');
  t.equal(ex.query, 'x=1&y=2');
  t.same(ex.headers, ['host', 'gw.example', 'x-thing', 'one', 'content-length', '5']);
  t.equal(ex.host, 'gw.example');
  t.equal(ex.ip, '10.1.2.3');
  t.equal(ex.hasBody, true);
  t.equal(req.getQuery('y'), '2');
  t.equal((await readBody(ex, 100)).toString(), 'hello', 'the body arrives through onData');
});

t.test('the recording response keeps what the edge wrote', async (t) => {
  const res = new RecordingResponse('127.0.0.1', undefined);
  const ex = openExchange(res, new SyntheticRequest('POST', '/x', [['host', 'h']]));
  sendJson(ex, 403, errorBody('FILTER_DENIED'), [['x-extra', '1']]);
  const answer = res.answer();
  t.equal(answer.statusLine, '403 Forbidden');
  t.same(
    answer.headers.find(([k]) => k === 'x-extra'),
    ['x-extra', '1'],
  );
  t.same(
    answer.headers.find(([k]) => k === 'server'),
    ['server', 'ProxyAuth'],
  );
  t.equal(answer.body, errorBody('FILTER_DENIED'));
  t.equal(answer.closed, false);
  t.equal(res.ended, true);
});

t.test('a paused body is held until resumed', async (t) => {
  const res = new RecordingResponse('127.0.0.1', Buffer.from('abc'));
  const got: string[] = [];
  res.pause();
  res.onData((chunk, last) => got.push(`${Buffer.from(chunk).toString()}:${last}`));
  await new Promise((r) => setImmediate(r));
  t.same(got, [], 'nothing while paused');
  res.resume();
  await new Promise((r) => setImmediate(r));
  t.same(got, ['abc:true'], 'delivered once, as the last chunk');
  res.onData(() => got.push('again'));
  await new Promise((r) => setImmediate(r));
  t.same(got, ['abc:true'], 'never delivered twice');
});

t.test(
  "a filter refusal names its condition for explain, never in the client's body",
  async (t) => {
    const { config, routes } = parseConfig(
      { secret: SECRET, users: [] },
      {
        routes: [
          { prefix: '/none', target: 'http://127.0.0.1:1', filters: { default_allow: false } },
        ],
      },
      FILES,
    );
    const { steps } = compileRoutePipeline(routes[0]!, config, ROUTE_FEATURES);
    let thrown: unknown;
    try {
      steps[0]!(CTX);
    } catch (err) {
      thrown = err;
    }
    t.ok(thrown instanceof GatewayError);
    const err = thrown as GatewayError;
    t.equal(err.code, 'FILTER_DENIED');
    t.match(err.reason, /filters\.allow is empty and default_allow is false/);
    t.equal(err.detail, undefined, 'no detail: nothing of the rule is sent');
    t.equal(errorBody(err.code, err.detail, err.after), errorBody('FILTER_DENIED'));
    t.notMatch(errorBody(err.code, err.detail, err.after), 'default_allow');
  },
);
