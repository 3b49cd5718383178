import { readFile } from 'node:fs/promises';

/** The shipped unit file (deploy/proxyauth.service). */
export const UNIT_FILE = new URL('../../deploy/proxyauth.service', import.meta.url);

/** A unit file as sections of settings; a key set more than once (Environment=) keeps each value. */
export type Unit = Map<string, [key: string, value: string][]>;

/** Parses the subset of systemd.syntax(7) the shipped unit uses: sections, `Key=value`, `#` comments. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || section === undefined) throw new Error(`unit file: cannot parse "${line}"`);
    section.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return unit;
}

export async function readUnit(): Promise<Unit> {
  return parseUnit(await readFile(UNIT_FILE, 'utf8'));
}

/** Every value of `key` in `section`, in file order. */
export function values(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The one value of `key`; throws when it is missing or set twice, so a test cannot pass on neither. */
export function value(unit: Unit, section: string, key: string): string {
  const all = values(unit, section, key);
  if (all.length !== 1) throw new Error(`[${section}] ${key}= is set ${all.length} times`);
  return all[0]!;
}

/** `Environment=NAME=value` lines as a record. */
export function environment(unit: Unit): Record<string, string> {
  const env: Record<string, string> = {};
  for (const assignment of values(unit, 'Service', 'Environment')) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return env;
}

/**
 * An Exec*= command line as argv, the way systemd.service(5) reads it: an optional prefix
 * (`+`, `-`, `!`, ...), words split on spaces, single and double quotes, `$$` for `$` and `%%`
 * for `%`. Other specifiers and `$VAR` expansion are not used by the shipped unit and refused.
 */
export function execArgv(line: string): { prefix: string; argv: string[] } {
  const prefix = /^[-+!@:|]*/.exec(line)?.[0] ?? '';
  const argv: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  const text = line.slice(prefix.length);
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === '$' || c === '%') && text[i + 1] === c) {
      word = (word ?? '') + c;
      i++;
    } else if (c === '$' || c === '%') {
      throw new Error(`unit file: unsupported ${c} expansion in "${line}"`);
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word = (word ?? '') + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (c === ' ') {
      if (word !== undefined) argv.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote !== undefined) throw new Error(`unit file: unclosed quote in "${line}"`);
  if (word !== undefined) argv.push(word);
  return { prefix, argv };
}
