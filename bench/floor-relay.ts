import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { FloorAnswer, FloorPool } from './floor-upstream.js';

/*
 * The floor's request handler: every request goes to the upstream as it came (method, path,
 * query, the client's headers but hop-by-hop ones, the body read whole), and the upstream's
 * answer back inside one cork. Nothing else: no routing, no auth, no limits, no logging, no
 * defence against request smuggling or header injection. It measures what uWS plus a bare
 * Node client cost per request; it is not a proxy to run.
 */

/** Request headers not forwarded: hop-by-hop (RFC 9110 section 7.6.1) and those set here. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  // uWS answers 100-continue itself.
  'expect',
]);

/** One request in flight; `aborted` once the client went away (res is dead then). */
interface FloorExchange {
  readonly res: HttpResponse;
  aborted: boolean;
}

/**
 * The handler for `app.any('/*', ...)`, relaying to `pool`'s upstream with `host` (its
 * `host:port`) as the Host header. It allocates a few closures per request, as the gateway's
 * request path does; measured as part of the floor.
 */
export function floorHandler(
  pool: FloorPool,
  host: string,
): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const method = req.getCaseSensitiveMethod();
    const query = req.getQuery();
    const target = query ? `${req.getUrl()}?${query}` : req.getUrl();
    let head = `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\n`;
    let hasBody = false;
    req.forEach((name, value) => {
      if (name === 'content-length') hasBody ||= value !== '0';
      else if (name === 'transfer-encoding') hasBody = true;
      if (!HOP_BY_HOP.has(name)) head += `${name}: ${value}\r\n`;
    });
    const ex: FloorExchange = { res, aborted: false };
    res.onAborted(() => {
      ex.aborted = true;
    });
    const relay = (answer: FloorAnswer | undefined): void => respond(ex, answer);
    if (!hasBody) {
      pool.request(`${head}\r\n`, undefined, method === 'HEAD', relay);
      return;
    }
    const chunks: Buffer[] = [];
    res.onData((chunk, isLast) => {
      // uWS reuses the chunk's memory once this returns: copy it.
      chunks.push(Buffer.copyBytesFrom(new Uint8Array(chunk)));
      if (!isLast) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      pool.request(`${head}content-length: ${body.length}\r\n\r\n`, body, false, relay);
    });
  };
}

/** Writes the answer (or a 502) to the client, unless it went away meanwhile. */
function respond(ex: FloorExchange, answer: FloorAnswer | undefined): void {
  if (ex.aborted) return;
  const res = ex.res;
  res.cork(() => {
    if (answer === undefined) {
      res.writeStatus('502 Bad Gateway').end('bad gateway');
      return;
    }
    res.writeStatus(answer.status);
    const headers = answer.headers;
    for (let i = 0; i < headers.length; i += 2) {
      res.writeHeader(headers[i] as string, headers[i + 1] as string);
    }
    // uWS writes Content-Length for end(body); a bodiless answer relayed its own.
    if (answer.body === undefined) res.endWithoutBody();
    else res.end(answer.body);
  });
}
