/** What `/readyz` looks at (supervisor/serve.ts gathers it at each probe). */
export interface HealthInputs {
  /** SIGTERM or SIGINT received: the node is draining. */
  stopping: boolean;
  /** A reload pass is under way (supervisor/reloader.ts). */
  reloading: boolean;
  /** The store was closed. */
  storeClosed: boolean;
  /** The generation the node serves (undefined before the first start). */
  generation: number | undefined;
  /** Edges the plan wants, and edges listening on the current generation. */
  edges: { wanted: number; current: number };
}

/** The `/readyz` answer: JSON, 200 when `ready`, else 503 with the first reason found. */
export interface HealthReport {
  ready: boolean;
  reason?: string;
  generation: number | null;
  edges: { wanted: number; serving: number };
}

/**
 * Readiness of the node: ready when it is not stopping, no reload is under way, the store is
 * open and every edge the plan wants listens on the current config generation. A reload, a
 * crashed edge not yet replaced, or a replacement still starting make it not ready.
 */
export function readiness(i: HealthInputs): HealthReport {
  const base = {
    generation: i.generation ?? null,
    edges: { wanted: i.edges.wanted, serving: i.edges.current },
  };
  const reason = notReadyReason(i);
  return reason === undefined ? { ready: true, ...base } : { ready: false, reason, ...base };
}

function notReadyReason(i: HealthInputs): string | undefined {
  if (i.stopping) return 'stopping';
  if (i.storeClosed) return 'store closed';
  if (i.generation === undefined || i.edges.wanted === 0) return 'starting';
  if (i.reloading) return 'reload in progress';
  if (i.edges.current < i.edges.wanted)
    return `${i.edges.current} of ${i.edges.wanted} edges serve generation ${i.generation}`;
  return undefined;
}
