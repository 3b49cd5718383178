import { z } from 'zod';

/**
 * A rate-limit block (`ratelimit_auth`, `ratelimit_proxy` in config.json, `ratelimit` of a
 * route in routes.yml), the original's keys: `requests_per_second` (alias
 * `request_per_seconds`), `burst` (requests beyond the rate a client may send at once) and
 * `block_delay` (milliseconds a client that went over is refused, every request).
 * `requests_per_second: 0` (or the block left out, or `{}`) turns the limit off; `burst: 0` is
 * valid; `burst` or `block_delay` without the rate is an error (it would read as a limit).
 * Semantics: README "Rate limits"; the limiter: shared/gcra.ts.
 */
export const rateLimitSchema = z
  .strictObject({
    // Fractions allowed: 0.5 means one request every two seconds. 0 disables the limiter.
    requests_per_second: z.number().min(0).max(1_000_000).optional(),
    request_per_seconds: z.number().min(0).max(1_000_000).optional(),
    burst: z.int().min(0).max(1_000_000).optional(),
    block_delay: z.int().min(0).max(86_400_000).optional(),
  })
  .superRefine((rl, ctx) => {
    if (rl.requests_per_second !== undefined && rl.request_per_seconds !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['request_per_seconds'],
        message: 'give either requests_per_second or its alias request_per_seconds, not both',
      });
    }
    // `{burst: 50}` alone would read as "limited" and be off: say so instead of ignoring it.
    if (
      rl.requests_per_second === undefined &&
      rl.request_per_seconds === undefined &&
      (rl.burst !== undefined || rl.block_delay !== undefined)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['requests_per_second'],
        message: 'missing: give the rate with burst and block_delay (0 turns the limit off)',
      });
    }
    const rps = rl.requests_per_second ?? rl.request_per_seconds ?? 0;
    // One request per day is the slowest rate the limiter keeps a client for.
    if (rps > 0 && rps < 1 / 86_400) {
      ctx.addIssue({
        code: 'custom',
        path: [
          rl.requests_per_second === undefined ? 'request_per_seconds' : 'requests_per_second',
        ],
        message: 'expected 0 (off) or at least one request per day (0.0000116)',
      });
    }
  })
  .transform(({ requests_per_second, request_per_seconds, burst, block_delay }) => ({
    requests_per_second: requests_per_second ?? request_per_seconds ?? 0,
    burst: burst ?? 0,
    block_delay: block_delay ?? 0,
  }));

/** A validated rate-limit block. */
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
