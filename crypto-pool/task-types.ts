/** The wire protocol between an edge and its crypto threads: one payload type per named task. */
export interface HashParams {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface HashPasswordTask {
  password: string;
  /** Defaults to ARGON2_OPTIONS; set to mirror existing hashes (the dummy hash of /auth). */
  params?: HashParams | undefined;
}

export interface VerifyPasswordTask {
  hash: string;
  password: string;
}

export const TASKS = { hashPassword: 'hashPassword', verifyPassword: 'verifyPassword' } as const;
