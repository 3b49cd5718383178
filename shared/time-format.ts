// Wall-clock times for clients, in the configured IANA zone, as the original's `expires_at`:
// `YYYY-MM-DD HH:MM:SS +HH:MM`. Intl knows the zone rules (DST, historical changes); the offset
// is read back as the difference between that wall clock and UTC, which is right for every
// zone, including negative and half-hour ones, without parsing ICU's offset names.
import { LruCache } from './lru-cache.js';

/** Thrown for a time zone that Intl does not know. */
export class TimeZoneError extends RangeError {
  readonly code = 'INVALID_TIME_ZONE';

  constructor(timeZone: string) {
    super(`unknown time zone: ${JSON.stringify(timeZone)}`);
    this.name = 'TimeZoneError';
  }
}

// Zones come from configuration, so a handful at most; the bound only guards against a caller
// feeding client input here.
const formatters = new LruCache<string, Intl.DateTimeFormat>(64);

/**
 * Formats a Unix time (seconds; fractions are dropped) as `YYYY-MM-DD HH:MM:SS +HH:MM` in
 * `timeZone`. Historical offsets with seconds (local mean time before ~1900) lose the seconds.
 * Throws TimeZoneError for an unknown zone and RangeError for a time Date cannot hold.
 */
export function formatExpiresAt(unixSeconds: number, timeZone: string): string {
  const ms = Math.floor(unixSeconds) * 1000;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid Unix time: ${unixSeconds}`);
  const fields = wallClock(formatterFor(timeZone), date);
  const local = new Date(0);
  local.setUTCFullYear(fields.year, fields.month - 1, fields.day);
  local.setUTCHours(fields.hour, fields.minute, fields.second);
  const offsetMinutes = Math.trunc((local.getTime() - ms) / 60_000);
  return (
    `${pad(fields.year, 4)}-${pad(fields.month, 2)}-${pad(fields.day, 2)} ` +
    `${pad(fields.hour, 2)}:${pad(fields.minute, 2)}:${pad(fields.second, 2)} ` +
    formatOffset(offsetMinutes)
  );
}

/** True when `timeZone` is a zone name Intl accepts (IANA names and aliases, `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0) return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch (error) {
    if (error instanceof TimeZoneError) return false;
    throw error;
  }
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone,
        // h23: midnight is 00, never 24 as some ICU versions print with hour12: false.
        hourCycle: 'h23',
        numberingSystem: 'latn',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch (error) {
      if (error instanceof RangeError) throw new TimeZoneError(timeZone);
      throw error;
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function wallClock(formatter: Intl.DateTimeFormat, date: Date): WallClock {
  const fields: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  let bce = false;
  for (const part of formatter.formatToParts(date)) {
    if (part.type === 'era') bce = part.value !== 'AD';
    else if (part.type in fields) fields[part.type as keyof WallClock] = Number(part.value);
  }
  // en-US counts years before 1 AD as eras (1 BC); the output uses astronomical years (0, -1).
  if (bce) fields.year = 1 - fields.year;
  return fields;
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
}

function pad(value: number, width: number): string {
  const text = String(Math.abs(value)).padStart(width, '0');
  return value < 0 ? `-${text}` : text;
}

/**
 * A Unix time (seconds; fractions dropped) as RFC 3339 in UTC, `YYYY-MM-DDTHH:MM:SSZ`, as the
 * admin API and `proxyauth stats` show times. Throws RangeError for a time Date cannot hold.
 */
export function formatRfc3339(unixSeconds: number): string {
  const date = new Date(Math.floor(unixSeconds) * 1000);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid Unix time: ${unixSeconds}`);
  return `${date.toISOString().slice(0, 19)}Z`;
}
