// Attack on the shared upstream read buffer (worker/h1-client.ts READ_BUFFER) with real
// processes: one edge, a raw upstream answering in every framing (length, chunked with
// extensions and trailers, HTTP/1.0 until close, 204/304/HEAD, 1xx first, bytes beyond the
// answer), pages that the CSRF transform rewrites, and clients that read fast, read slowly or
// leave mid-body, all at once. Every body is a keystream of its own request id: any byte of
// another answer in it is cross-talk.
//
// Bytes beyond an answer come in the same write as its end here. Sent in a write of their own,
// they may arrive after the connection was reused, and then they ARE the next request's answer
// to any HTTP/1.1 client (the upstream desynchronised itself): the gateway before the shared
// read buffer (eeb6649) gave other requests those bytes just the same (51-59 of 720 answers).
import { createCipheriv, createHash } from 'node:crypto';
import { connect } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { startGateway } from './helpers/gateway.js';
import { type HostileChunk, startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses } from './helpers/raw-http.js';
import { seededRandom } from './helpers/seeded-random.js';
import { startWsBackend } from './helpers/ws-backend.js';

/** `size` bytes of `id`'s own keystream. */
function pattern(id: string, size: number): Buffer {
  const key = createHash('sha256').update(id).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A page with placeholders (base64 of the keystream: text) and what the transform makes of it. */
function page(id: string, size: number): { html: Buffer; expected: Buffer } {
  const text = pattern(id, size).toString('base64');
  const parts: string[] = ['<html><body>'];
  for (let at = 0; at < text.length; at += 3000)
    parts.push(`<p>${text.slice(at, at + 3000)}</p>{{ csrf_token }}`);
  parts.push('</body></html>');
  const html = parts.join('');
  return {
    html: Buffer.from(html),
    expected: Buffer.from(html.replaceAll('{{ csrf_token }}', '')),
  };
}

const KINDS = [
  'len',
  'chunked',
  'close10',
  'nocontent',
  'notmodified',
  'head',
  'interim',
  'extra',
  'chunkedextra',
  'page',
  'gzpage',
] as const;
type Kind = (typeof KINDS)[number];

/** A forged answer of someone else, sent beyond an answer. */
const FORGED_BODY = pattern('forged', 3000);
const FORGED = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 OK\r\nx-id: forged\r\ncontent-length: ${FORGED_BODY.length}\r\n\r\n`),
  FORGED_BODY,
]);

/** `data` cut into pieces of random size with small random delays. */
function dribble(data: Buffer, random: () => number): HostileChunk[] {
  const out: HostileChunk[] = [];
  for (let at = 0; at < data.length; ) {
    const n = 1 + Math.floor(random() * (random() < 0.3 ? 40 : 20_000));
    out.push({ data: data.subarray(at, at + n), delayMs: random() < 0.2 ? 1 : 0 });
    at += n;
  }
  return out;
}

function chunkedBody(body: Buffer, random: () => number, id: string): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const n = 1 + Math.floor(random() * 9000);
    const piece = body.subarray(at, at + n);
    const ext = random() < 0.5 ? `;name=${id};q="x y"` : '';
    parts.push(Buffer.from(`${piece.length.toString(16)}${ext}\r\n`), piece, Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from(`0\r\nx-trailer: ${id}\r\nx-more: ${'t'.repeat(200)}\r\n\r\n`));
  return Buffer.concat(parts);
}

const up = await startHostileUpstream((req) => {
  const [, , kind = '', id = '', sizeText = '0'] = req.target.split('/');
  const size = Number(sizeText);
  const random = seededRandom(createHash('sha1').update(id).digest().readUInt32BE(0));
  const body = pattern(id, size);
  const common = `x-id: ${id}\r\nx-sha: ${createHash('sha256').update(body).digest('hex')}\r\n`;
  const head = (status: string, extra: string) =>
    Buffer.from(`HTTP/1.1 ${status}\r\n${common}${extra}\r\n`);
  switch (kind as Kind) {
    case 'len':
      return {
        chunks: dribble(
          Buffer.concat([head('200 OK', `content-length: ${size}\r\n`), body]),
          random,
        ),
      };
    case 'chunked':
      return {
        chunks: dribble(
          Buffer.concat([
            head('200 OK', 'transfer-encoding: chunked\r\ntrailer: x-trailer\r\n'),
            chunkedBody(body, random, id),
          ]),
          random,
        ),
      };
    case 'close10':
      return {
        chunks: dribble(
          Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\n${common}\r\n`), body]),
          random,
        ),
        after: 'end',
      };
    case 'nocontent':
      return { chunks: [Buffer.concat([head('204 No Content', ''), FORGED])] };
    case 'notmodified':
      return {
        chunks: [Buffer.concat([head('304 Not Modified', `content-length: ${size}\r\n`), FORGED])],
      };
    case 'head':
      return {
        chunks: [
          Buffer.concat([
            head('200 OK', `content-length: ${size}\r\n`),
            req.method === 'HEAD' ? FORGED : body,
          ]),
        ],
      };
    case 'interim':
      return {
        chunks: dribble(
          Buffer.concat([
            Buffer.from(
              'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n',
            ),
            head('200 OK', `content-length: ${size}\r\n`),
            body,
          ]),
          random,
        ),
      };
    case 'extra': {
      // The forged answer in the same write as the answer's last bytes.
      const chunks = dribble(
        Buffer.concat([head('200 OK', `content-length: ${size}\r\n`), body]),
        random,
      );
      const last = chunks.pop() as { data: Buffer; delayMs: number };
      chunks.push({ data: Buffer.concat([last.data, FORGED]), delayMs: last.delayMs });
      return { chunks };
    }
    case 'chunkedextra': {
      // The forged answer right after the last chunk and trailers, in the same write.
      const chunks = dribble(
        Buffer.concat([
          head('200 OK', 'transfer-encoding: chunked\r\n'),
          chunkedBody(body, random, id),
        ]),
        random,
      );
      const last = chunks.pop() as { data: Buffer; delayMs: number };
      chunks.push({ data: Buffer.concat([last.data, FORGED]), delayMs: last.delayMs });
      return { chunks };
    }
    case 'page': {
      const { html } = page(id, size);
      return {
        chunks: dribble(
          Buffer.concat([
            head('200 OK', `content-type: text/html\r\ncontent-length: ${html.length}\r\n`),
            html,
          ]),
          random,
        ),
      };
    }
    case 'gzpage': {
      const gz = gzipSync(page(id, size).html, { level: 1 });
      return {
        chunks: dribble(
          Buffer.concat([
            head(
              '200 OK',
              `content-type: text/html\r\ncontent-encoding: gzip\r\ncontent-length: ${gz.length}\r\n`,
            ),
            gz,
          ]),
          random,
        ),
      };
    }
    default:
      return { chunks: ['HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n'] };
  }
});

// A WebSocket backend that echoes, for a tunnel beside the plain traffic.
const ws = await startWsBackend({
  onConnection: (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })),
});

// Health checks of the same origin every 100 ms (worker/health-check.ts reads their bodies
// through the same pool, with copies) interleave with the clients' requests.
const gw = await startGateway({
  config: {
    num_instances: 1,
    session_cookie: true,
    client_timeout: 60_000,
    max_idle_per_host: 4,
  },
  routes: [
    'routes:',
    `  - { prefix: /s, target: '${up.origin}', secure: false, preserve_prefix: true }`,
    `  - prefix: /h`,
    `    target: '${up.origin}/s/len/hc/70000'`,
    '    secure: false',
    `    backends: ['${up.origin}/s/len/hc/70000']`,
    '    health_check: { path: /s/len/hc/70000, interval: 100, timeout: 100 }',
    `  - { prefix: /ws, target: '${ws.origin}', secure: false }`,
    '',
  ].join('\n'),
});
t.teardown(async () => {
  await gw.stop();
  await up.close();
  await ws.close();
});

/** A tunnel that echoes `count` messages of its own keystream; what went wrong, if anything. */
async function tunnel(id: string, count: number): Promise<string | undefined> {
  const socket = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/${id}`);
  await new Promise<void>((resolve, reject) => {
    socket.on('open', () => resolve());
    socket.on('error', reject);
  });
  // A tunnel that closes (or never echoes) is a failure to report, not a wait for tap's timeout.
  const closed = new Promise<string>((resolve) =>
    socket.once('close', (code, reason) => resolve(`closed ${code} ${reason.toString()}`)),
  );
  try {
    for (let i = 0; i < count; i++) {
      const sent = pattern(`${id}-${i}`, 1 + ((i * 7919) % 200_000));
      const echoed = new Promise<Buffer>((resolve) =>
        socket.once('message', (data) => resolve(data as Buffer)),
      );
      socket.send(sent);
      const got = await Promise.race([echoed, closed, deadline(60_000)]);
      if (typeof got === 'string') return `${id}: message ${i} not echoed: ${got}`;
      if (!got.equals(sent)) return `${id}: message ${i} differs`;
    }
    return undefined;
  } finally {
    socket.close();
  }
}

interface Want {
  id: string;
  kind: Kind;
  method: 'GET' | 'HEAD';
  size: number;
  body: Buffer;
}

function want(kind: Kind, id: string, size: number): Want {
  const method = kind === 'head' ? 'HEAD' : 'GET';
  const bodiless = kind === 'head' || kind === 'nocontent' || kind === 'notmodified';
  const body = bodiless
    ? Buffer.alloc(0)
    : kind === 'page' || kind === 'gzpage'
      ? page(id, size).expected
      : pattern(id, size);
  return { id, kind, method, size, body };
}

/** What went wrong with one answer, or undefined. */
function check(w: Want, status: number, id: string | undefined, body: Buffer): string | undefined {
  const wantStatus = w.kind === 'nocontent' ? 204 : w.kind === 'notmodified' ? 304 : 200;
  if (status !== wantStatus) return `${w.id}: status ${status}`;
  if (id !== w.id) return `${w.id}: x-id ${id}`;
  let got = body;
  if (w.kind === 'gzpage') {
    try {
      got = gunzipSync(body);
    } catch {
      return `${w.id}: not gzip (${body.length})`;
    }
  }
  if (!got.equals(w.body)) return `${w.id}: body differs (${body.length} vs ${w.body.length})`;
  return undefined;
}

/** Resolves with a description after `ms`: a wait that would hang reports instead. */
function deadline(ms: number): Promise<string> {
  return new Promise((resolve) => setTimeout(() => resolve(`nothing after ${ms} ms`), ms).unref());
}

/** A fast client on a keep-alive pool. */
async function fast(pool: Pool, w: Want): Promise<string | undefined> {
  // Undici's own timeouts are 300 s, tap's too: a request that hangs fails first, by its id.
  const res = await pool.request({
    path: `/s/${w.kind}/${w.id}/${w.size}`,
    method: w.method,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const id = res.headers['x-id'];
  return check(w, res.statusCode, typeof id === 'string' ? id : undefined, body);
}

/** A raw client that reads in small bites with pauses, or leaves after `leaveAt` bytes. */
function raw(w: Want, slowMs: number, leaveAt: number | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: gw.port });
    // The gateway's client_timeout is 60 s: a connection still open after 90 s is reported.
    const timer = setTimeout(() => {
      resolve(
        `${w.id}: ${w.kind} ${w.method} to a ${slowMs} ms reader, ${got} bytes, open after 90 s`,
      );
      socket.destroy();
    }, 90_000).unref();
    socket.on('close', () => clearTimeout(timer));
    const chunks: Buffer[] = [];
    let got = 0;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (leaveAt !== undefined && got >= leaveAt) {
        socket.destroy();
        resolve(undefined);
        return;
      }
      if (slowMs > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), slowMs);
      }
    });
    socket.on('close', () => {
      if (leaveAt !== undefined) return resolve(undefined);
      const parsed = parseResponses(Buffer.concat(chunks), [w.method]);
      const r = parsed.responses[0];
      if (r === undefined) return resolve(`${w.id}: no answer (${got} bytes)`);
      resolve(check(w, r.status, r.headers.get('x-id')?.[0], r.body));
    });
    socket.setNoDelay(true);
    socket.write(
      `${w.method} /s/${w.kind}/${w.id}/${w.size} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
  });
}

t.test('no answer carries bytes of another', async (t) => {
  const random = seededRandom(25);
  const pools = Array.from({ length: 6 }, () => new Pool(gw.url, { connections: 4 }));
  const wrong: string[] = [];
  let n = 0;
  const lanes = Array.from({ length: 24 }, async (_, lane) => {
    for (let i = 0; i < 30; i++) {
      const kind = KINDS[Math.floor(random() * KINDS.length)]!;
      const size = 1 + Math.floor(random() * (random() < 0.2 ? 400_000 : 30_000));
      const w = want(kind, `l${lane}-${i}-${kind}`, size);
      const mode = random();
      let err: string | undefined;
      try {
        if (mode < 0.6) err = await fast(pools[lane % pools.length]!, w);
        else if (mode < 0.85) err = await raw(w, 1 + Math.floor(random() * 5), undefined);
        else err = await raw(w, 0, 1 + Math.floor(random() * (size + 200)));
      } catch (e) {
        err = `${w.id}: ${(e as Error).message}`;
      }
      n++;
      if (err !== undefined) wrong.push(err);
    }
  });
  const tunnels = Array.from({ length: 3 }, async (_, i) => {
    const err = await tunnel(`ws${i}`, 40).catch((e: Error) => `ws${i}: ${e.message}`);
    if (err !== undefined) wrong.push(err);
  });
  await Promise.all([...lanes, ...tunnels]);
  await Promise.all(pools.map((p) => p.close()));
  const checks = up.requests.filter((r) => r.target === '/s/len/hc/70000').length;
  t.ok(checks > 5, `health checks ran alongside (${checks})`);
  t.same(wrong, [], `${n} answers, every byte its own`);
});

t.test('large answers to clients that stall, beside fast ones on reused connections', async (t) => {
  const random = seededRandom(2525);
  const pool = new Pool(gw.url, { connections: 8 });
  const wrong: string[] = [];
  let n = 0;
  const slowLanes = Array.from({ length: 6 }, async (_, lane) => {
    for (let i = 0; i < 4; i++) {
      const kind = (['len', 'chunked', 'close10', 'page', 'gzpage', 'interim'] as const)[
        Math.floor(random() * 6)
      ]!;
      const w = want(kind, `s${lane}-${i}-${kind}`, 500_000 + Math.floor(random() * 1_500_000));
      const err = await raw(w, 20 + Math.floor(random() * 30), undefined);
      n++;
      if (err !== undefined) wrong.push(err);
    }
  });
  let running = true;
  const fastLanes = Array.from({ length: 8 }, async (_, lane) => {
    for (let i = 0; running; i++) {
      const kind = (['len', 'chunked', 'interim', 'page'] as const)[i % 4]!;
      const w = want(kind, `f${lane}-${i}-${kind}`, 1 + Math.floor(random() * 70_000));
      const err = await fast(pool, w).catch((e: Error) => `${w.id}: ${e.message}`);
      n++;
      if (err !== undefined) wrong.push(err);
    }
  });
  await Promise.all(slowLanes);
  running = false;
  await Promise.all(fastLanes);
  await pool.close();
  t.same(wrong, [], `${n} answers, every byte its own`);
});
