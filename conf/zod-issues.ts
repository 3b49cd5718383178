import type { z } from 'zod';
import type { ConfigIssue } from './config-error.js';
import { formatKeyPath } from './key-path.js';

/** Keys that a strict schema did not recognise, reported as warnings and dropped. */
export interface UnknownKeys {
  path: PropertyKey[];
  keys: string[];
}

/** Per-parse error map: a missing required key reads "is required" rather than a type error. */
export const requiredKeyMessage: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined;

/** Splits zod issues into real errors and unknown-key reports. */
export function splitIssues(
  file: string,
  issues: readonly z.core.$ZodIssue[],
): { errors: ConfigIssue[]; unknown: UnknownKeys[] } {
  const errors: ConfigIssue[] = [];
  const unknown: UnknownKeys[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') unknown.push({ path: issue.path, keys: issue.keys });
    else errors.push({ file, key: formatKeyPath(issue.path), message: issue.message });
  }
  return { errors, unknown };
}

/** `<file>: <key>: unknown key (ignored)` for each unknown key. */
export function unknownKeyWarnings(file: string, unknown: readonly UnknownKeys[]): string[] {
  return unknown.flatMap((u) =>
    u.keys.map((k) => `${file}: ${formatKeyPath([...u.path, k])}: unknown key (ignored)`),
  );
}

/** An error for each unknown key where a misspelling could drop a restriction. */
export function unknownKeyErrors(file: string, unknown: readonly UnknownKeys[]): ConfigIssue[] {
  return unknown.flatMap((u) =>
    u.keys.map((k) => ({
      file,
      key: formatKeyPath([...u.path, k]),
      message: 'unknown key: in a user or a route, a misspelled key would drop a restriction',
    })),
  );
}

/** A deep copy of `raw` without the reported unknown keys, so a second parse can succeed. */
export function withoutUnknownKeys(raw: unknown, unknown: readonly UnknownKeys[]): unknown {
  const copy: unknown = structuredClone(raw);
  for (const u of unknown) {
    const target = u.path.reduce<unknown>(
      (node, seg) => (isRecord(node) ? node[seg as string] : undefined),
      copy,
    );
    if (isRecord(target)) for (const k of u.keys) delete target[k];
  }
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
