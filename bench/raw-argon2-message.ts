/** What the runner gives each raw-Argon2 worker thread. */
export interface Argon2WorkerData {
  readonly hash: string;
  readonly password: string;
  readonly durationMs: number;
}

/** Sent once loaded, after one untimed verify; the runner then posts any message to start. */
export interface Argon2WorkerReady {
  readonly type: 'ready';
  /** Whether the untimed verify accepted the password. */
  readonly verifies: boolean;
}

/** Sent once the worker's time is up. */
export interface Argon2WorkerDone {
  readonly type: 'done';
  /** One entry per verification, in milliseconds. */
  readonly latenciesMs: readonly number[];
  /** Verifications that answered false (the hash must verify: any is a bench failure). */
  readonly refused: number;
}

/** Every message a raw-Argon2 worker posts. */
export type Argon2WorkerMessage = Argon2WorkerReady | Argon2WorkerDone;
