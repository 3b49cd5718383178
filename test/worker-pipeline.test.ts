// The request pipeline: features compile only what a route uses; steps can decorate answers
// (the gateway's and the upstream's) and a route can transform proxied bodies, streaming.

import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import { TokenCodec } from '../shared/token-codec.js';
import type { EdgeServices } from '../worker/edge-services.js';
import {
  type BodySink,
  compileRoutePipeline,
  type ResponseBodyTransform,
  type RouteFeature,
} from '../worker/pipeline.js';
import { ROUTE_FEATURES } from '../worker/route-features.js';
import { Runtime } from '../worker/runtime.js';
import { addResponseHeader } from '../worker/uws-io.js';
import { inProcessNode, serveEdge } from './helpers/edge-services.js';
import { startUpstream } from './helpers/upstream.js';

const SECRET = 'pipeline-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const FILES = { config: '/virtual/config.json', routes: '/virtual/routes.yml' };

function parse(routes: unknown[]) {
  return parseConfig({ secret: SECRET, users: [] }, { routes }, FILES);
}

t.test('a feature that is off adds nothing to a route', async (t) => {
  const { config, routes } = parse([
    { prefix: '/pub', target: 'http://127.0.0.1:1', secure: false },
    { prefix: '/sec', target: 'http://127.0.0.1:1' },
    { prefix: '/all', target: 'http://127.0.0.1:1', username: ['a'], allow_methods: ['GET'] },
  ]);
  const counts = routes.map((r) => compileRoutePipeline(r, config, ROUTE_FEATURES).steps.length);
  t.same(counts, [1, 1, 3], 'credential only; credential only; methods, credential, user list');
});

t.test('steps run in feature order; two transforms on one route are a compile error', async (t) => {
  const { config, routes } = parse([{ prefix: '/x', target: 'http://127.0.0.1:1' }]);
  const order: string[] = [];
  const named = (name: string): RouteFeature => ({
    name,
    compile: (b) =>
      b.step(() => {
        order.push(name);
      }),
  });
  const { steps } = compileRoutePipeline(routes[0]!, config, [named('a'), named('b'), named('c')]);
  for (const step of steps) step({} as never);
  t.same(order, ['a', 'b', 'c']);
  const transformer: RouteFeature = {
    name: 'upper',
    compile: (b) => b.transformResponses(upperCase),
  };
  t.throws(() => compileRoutePipeline(routes[0]!, config, [transformer, transformer]), {
    message: /already transformed by upper/,
  });
});

/** Upper-cases text/plain bodies, holding back nothing: a streaming transform. */
function upperCase(_ctx: unknown, sink?: BodySink): ResponseBodyTransform {
  return {
    start: (_status, headers) => String(headers['content-type']).startsWith('text/plain'),
    push: (chunk) => sink!.write(Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1')),
    end: () => {
      sink!.write(Buffer.from('!'));
      sink!.end();
    },
    drained: () => sink!.ready(),
    destroy: () => {},
  };
}

const decorate: RouteFeature = {
  name: 'decorate',
  compile: (b) => b.step((ctx) => addResponseHeader(ctx.ex, 'x-decorated', b.route.prefix)),
};
const transform: RouteFeature = {
  name: 'upper',
  compile: (b) => {
    if (b.route.prefix === '/up') b.transformResponses(upperCase);
  },
};

t.test('decoration and body transforms, in a real edge', async (t) => {
  const upstream = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/text/')) return false;
    const chunked = req.url === '/text/chunked';
    res.writeHead(200, {
      'content-type': 'text/plain',
      ...(chunked ? {} : { 'content-length': '11' }),
    });
    if (chunked) res.write('hello ');
    res.end(chunked ? 'world' : 'hello world');
    return true;
  });
  const snapshot: ConfigSnapshot = {
    generation: 1,
    keyRing: { active: SECRET, verifyOnly: [] },
    configDir: '/virtual',
    dataDir: '/virtual/data',
    files: FILES,
    raw: {
      config: {
        secret: SECRET,
        users: [
          {
            username: 'u',
            password: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
          },
        ],
      },
      routes: {
        routes: [
          { prefix: '/up', target: upstream.origin, secure: false },
          { prefix: '/plain', target: upstream.origin, secure: false },
          { prefix: '/sec', target: upstream.origin },
        ],
      },
    },
  };
  const node = await inProcessNode();
  const services: EdgeServices = node.services;
  const runtime = await Runtime.build(snapshot, services, undefined, {
    features: [decorate, ...ROUTE_FEATURES, transform],
  });
  t.teardown(() => upstream.close());
  const url = await serveEdge(t, node, runtime);

  for (const path of ['/up/text/length', '/up/text/chunked']) {
    const res = await fetch(`${url}${path}`);
    t.equal(res.status, 200, path);
    t.equal(await res.text(), 'HELLO WORLD!', `${path}: transformed, tail added`);
    t.equal(res.headers.get('content-length'), null, `${path}: the length is dropped`);
    t.equal(res.headers.get('x-decorated'), '/up', `${path}: decorated`);
  }
  const json = await fetch(`${url}/up/echo`);
  t.equal(json.headers.get('content-type'), 'application/json', 'not text/plain');
  t.match(await json.text(), /^\{"method":"GET"/, 'a response the transform declined is untouched');
  const plain = await fetch(`${url}/plain/text/length`);
  t.equal(await plain.text(), 'hello world', 'a route without the transform');
  t.equal(plain.headers.get('content-length'), '11');
  t.equal(plain.headers.get('x-decorated'), '/plain');
  const refused = await fetch(`${url}/sec/x`);
  t.equal(refused.status, 401);
  t.equal(refused.headers.get('x-decorated'), '/sec', "the gateway's own answers are decorated");
  const token = new TokenCodec(SECRET).issue('u', 60, Math.floor(Date.now() / 1000)).token;
  const allowed = await fetch(`${url}/sec/x`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(allowed.status, 200);
  t.equal(((await allowed.json()) as { headers: Record<string, string> }).headers['x-user'], 'u');
});
