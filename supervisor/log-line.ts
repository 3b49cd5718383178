import { isLogLevel, type LogLevel } from '../shared/log.js';

/** What a sink needs to know of one line: its Loki labels `level` and `kind`. */
export interface LineInfo {
  level: LogLevel;
  kind: 'access' | 'app';
}

const JSON_LEVEL = /"level":"([a-z]+)"/;

/**
 * Classifies a line written by shared/log.ts or shared/access-log.ts, in either format:
 * JSON access lines start `{"ts":...,"type":"access"`, text ones `<time> ACCESS`; app lines
 * carry `"level":"..."` (JSON) or the level as their second word (text). Anything else (a
 * stray write) is an app line at info.
 */
export function classifyLine(line: string): LineInfo {
  if (line.startsWith('{')) {
    if (line.startsWith('{"ts":') && line.includes('"type":"access"')) {
      return { level: 'info', kind: 'access' };
    }
    const level = JSON_LEVEL.exec(line)?.[1];
    return { level: isLogLevel(level) ? level : 'info', kind: 'app' };
  }
  const space = line.indexOf(' ');
  const word = line.slice(space + 1, line.indexOf(' ', space + 1)).toLowerCase();
  if (word === 'access') return { level: 'info', kind: 'access' };
  // Text lines may carry colour codes around the level.
  const level = word.replace(/\x1b\[[0-9;]*m/g, '');
  return { level: isLogLevel(level) ? level : 'info', kind: 'app' };
}
