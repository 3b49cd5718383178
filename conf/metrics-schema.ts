import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

/** `IPv4:port` or `[IPv6]:port`. */
const LISTEN_SYNTAX = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([0-9]{1,5})$/;

/** Whether `ip` (an IP literal) is a loopback address: 127.0.0.0/8 or ::1. */
export function isLoopback(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Ours: config.json's `metrics` block (README "Metrics and health"). Absent: no metrics
 * listener, and the edges count nothing. `listen` is `IPv4:port` or `[IPv6]:port` (an IP literal,
 * never a host name, so that "loopback" cannot depend on DNS); port 0 takes any free port. An
 * address other than loopback is refused unless `allow_remote` is true: the scrape shows routes,
 * traffic and failures, which is for the operator's eyes. Read at start.
 */
export const metricsSchema = z
  .strictObject({
    listen: z.string(),
    allow_remote: z.boolean().default(false),
  })
  .transform(({ listen, allow_remote }, ctx) => {
    const match = LISTEN_SYNTAX.exec(listen);
    const host = match?.[1] ?? match?.[2];
    const port = Number(match?.[3]);
    if (host === undefined || isIP(host) === 0 || !(port >= 0 && port <= 65_535)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: 'expected "IPv4:port" or "[IPv6]:port", e.g. "127.0.0.1:9464"',
      });
      return z.NEVER;
    }
    if (!allow_remote && !isLoopback(host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `${host} is not a loopback address: set "allow_remote": true to serve metrics there`,
      });
      return z.NEVER;
    }
    return { host, port, allow_remote };
  });

export type MetricsConfig = z.output<typeof metricsSchema>;
