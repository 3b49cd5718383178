/** What the runner asks a load tool to do. */
export interface LoadRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Default GET. */
  readonly method?: 'GET' | 'POST' | undefined;
  readonly body?: string | undefined;
  readonly connections: number;
  readonly threads: number;
  readonly durationSec: number;
}

/** Socket-level failures counted by the load tool. */
export interface SocketErrors {
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly timeout: number;
}

/** One timed run, normalised across load tools (latencies in milliseconds). */
export interface LoadResult {
  readonly requests: number;
  readonly durationSec: number;
  readonly requestsPerSec: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
  /** Responses with status >= 400 ("Non-2xx or 3xx responses" in wrk's words). */
  readonly errorResponses: number;
  readonly socketErrors: SocketErrors;
}

/** A load generator found on this machine. */
export interface LoadTool {
  readonly name: 'wrk' | 'autocannon';
  readonly version: string;
  run(request: LoadRequest, signal?: AbortSignal): Promise<LoadResult>;
}
