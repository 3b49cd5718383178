import type { EdgeMessage } from '../../shared/ipc.js';
import type { RateAuthority } from '../../supervisor/rate-authority.js';
import { MAX_ENTRIES, RateLimiter } from '../../worker/rate-limiter.js';
import { SupervisorLink } from '../../worker/supervisor-link.js';
import { memoryLog } from './fake-edge.js';

/**
 * One edge's limiter holding at most `maxEntries` leases, wired to `authority`, which answers
 * asynchronously as the IPC channel does; `sent` lists every message the edge sent.
 */
export function limiterEdge(authority: RateAuthority, maxEntries = MAX_ENTRIES) {
  const sent: EdgeMessage[] = [];
  const link: SupervisorLink = new SupervisorLink((m) => {
    sent.push(m);
    setImmediate(() => {
      if (m.type === 'rate-take')
        link.settle({ type: 'answer', id: m.id, value: { results: authority.take(m.items) } });
      if (m.type === 'rate-settle') authority.settle(m.items);
    });
    return true;
  });
  return { limiter: new RateLimiter(link, memoryLog(), maxEntries), sent };
}
