import type { Explanation } from './explain.js';

function credentialLine(c: Explanation['credential']): string {
  if (c.kind === 'none') return 'none';
  const from = c.kind === 'user' ? 'minted for --user' : '--token';
  if (c.token !== 'valid') return `${from}: not a valid token here (${c.token})`;
  const revoked = c.revoked ? 'REVOKED (a revocation in force refuses it)' : 'not revoked';
  return `${from}: user ${c.user}, token id ${c.tokenId}, ${revoked}`;
}

function stepLine(s: Explanation['steps'][number], i: number): string {
  let line = `  ${String(i + 1).padStart(2)}. ${s.feature.padEnd(18)} ${s.verdict}`;
  if (s.code !== undefined) line += `: ${s.code}`;
  if (s.detail !== undefined) line += ` (${s.detail})`;
  if (s.reason !== undefined) line += ` [${s.reason}]`;
  return line;
}

function answerLines(e: Explanation): string[] {
  const a = e.answer;
  if (a.outcome === 'forwarded') {
    return ["answer      forwarded upstream: the answer is the upstream's, relayed"];
  }
  if (a.outcome === 'gateway endpoint') {
    return [`answer      the gateway endpoint ${e.endpoint} answers (not run by explain)`];
  }
  const lines = [
    `answer      ${a.status ?? '-'} ${a.code ?? ''}${a.closes ? ' (connection closed)' : ''}`,
  ];
  for (const [k, v] of a.headers) {
    if (k !== 'server' && k !== 'content-type' && k !== 'cache-control') lines.push(`  ${k}: ${v}`);
  }
  if (a.body !== '') lines.push(`  body: ${a.body}`);
  return lines;
}

/** The human-readable report of `proxyauth explain` (`--json` prints the Explanation itself). */
export function formatExplanation(e: Explanation): string {
  const r = e.request;
  const out = [
    `request     ${r.method} ${r.target}  (Host: ${r.host ?? '-'}, client ${r.clientIp}, body ${r.bodyBytes} bytes)`,
    `credential  ${credentialLine(e.credential)}`,
    `canonical   ${e.canonicalPath ?? '(none: the path cannot be canonicalized)'}`,
  ];
  if (e.endpoint !== undefined) out.push(`endpoint    ${e.endpoint} (the gateway's own)`);
  out.push('routes');
  if (e.routes.length === 0) out.push('  (routes.yml has none)');
  const width = Math.max(0, ...e.routes.map((x) => x.prefix.length));
  for (const x of e.routes) {
    out.push(`  ${x.verdict.padEnd(14)} ${x.prefix.padEnd(width)}  ${x.why}`);
  }
  out.push(`fold check  ${e.foldCheck}`);
  if (e.route !== undefined) {
    out.push('checks (in order)');
    if (e.steps.length === 0) out.push('  (this route has no steps)');
    e.steps.forEach((s, i) => {
      out.push(stepLine(s, i));
    });
  }
  const rl = e.rateLimit;
  if (rl !== undefined) {
    out.push(
      `rate limit  ${rl.policy}: ${rl.requestsPerSecond} req/s, burst ${rl.burst}, block_delay ${rl.blockDelayMs} ms; budget ${rl.key}`,
    );
  } else if (e.route !== undefined) out.push('rate limit  off on this route');
  const up = e.upstream;
  if (up !== undefined) {
    out.push(`upstream    ${up.method} ${up.url}${up.websocket ? ' (WebSocket)' : ''}`);
    for (const b of up.backends ?? []) {
      out.push(`  backend ${b.url} weight ${b.weight === -1 ? 'backup' : b.weight}`);
    }
    for (const [k, v] of up.headers) out.push(`  ${k}: ${v}`);
  }
  out.push(...answerLines(e));
  if (e.notes.length > 0) {
    out.push('notes');
    for (const n of e.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
