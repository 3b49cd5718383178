/**
 * The messages between the supervisor and its edges (child_process IPC, JSON-serialized).
 * A config snapshot travels raw and is re-validated by the edge with the same parser, so
 * compiled values (RegExp, matchers) never need to cross the process boundary.
 */
export interface ConfigSnapshot {
  generation: number;
  configDir: string;
  dataDir: string;
  files: { config: string; routes: string };
  raw: { config: unknown; routes: unknown };
}

export type SupervisorMessage =
  | { type: 'config'; snapshot: ConfigSnapshot }
  | { type: 'drain'; timeoutMs: number };

export type EdgeMessage =
  | { type: 'listening'; generation: number; port: number }
  | { type: 'config-applied'; generation: number }
  | { type: 'config-rejected'; generation: number; reason: string }
  | { type: 'fatal'; reason: string };

export function isEdgeMessage(value: unknown): value is EdgeMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}

export function isSupervisorMessage(value: unknown): value is SupervisorMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}
