import t from 'tap';
import { formatExpiresAt, isValidTimeZone, TimeZoneError } from '../shared/time-format.js';

// Fixed instants, checked by hand: 2024-07-01T12:00:00Z and 2024-01-15T12:00:00Z.
const SUMMER = Date.UTC(2024, 6, 1, 12, 0, 0) / 1000;
const WINTER = Date.UTC(2024, 0, 15, 12, 0, 0) / 1000;

t.test('formats in the zone with its offset at that instant', async (t) => {
  const cases: Array<[number, string, string]> = [
    [SUMMER, 'UTC', '2024-07-01 12:00:00 +00:00'],
    [SUMMER, 'Europe/Paris', '2024-07-01 14:00:00 +02:00'],
    [WINTER, 'Europe/Paris', '2024-01-15 13:00:00 +01:00'],
    [SUMMER, 'America/New_York', '2024-07-01 08:00:00 -04:00'],
    [WINTER, 'America/New_York', '2024-01-15 07:00:00 -05:00'],
    [SUMMER, 'Asia/Kolkata', '2024-07-01 17:30:00 +05:30'],
    [WINTER, 'America/St_Johns', '2024-01-15 08:30:00 -03:30'],
    [SUMMER, 'America/St_Johns', '2024-07-01 09:30:00 -02:30'],
    [SUMMER, 'Asia/Kathmandu', '2024-07-01 17:45:00 +05:45'],
    [SUMMER, 'Pacific/Kiritimati', '2024-07-02 02:00:00 +14:00'],
    [SUMMER, 'Etc/GMT+12', '2024-07-01 00:00:00 -12:00'],
    [0, 'UTC', '1970-01-01 00:00:00 +00:00'],
  ];
  t.same(
    cases.map(([at, zone]) => [at, zone, formatExpiresAt(at, zone)]),
    cases,
  );
});

t.test('midnight is 00, and the DST switch is followed to the second', async (t) => {
  // Europe/Paris went to summer time on 2024-03-31 at 01:00:00Z (02:00 local became 03:00).
  const switchAt = Date.UTC(2024, 2, 31, 1, 0, 0) / 1000;
  t.equal(formatExpiresAt(switchAt - 1, 'Europe/Paris'), '2024-03-31 01:59:59 +01:00');
  t.equal(formatExpiresAt(switchAt, 'Europe/Paris'), '2024-03-31 03:00:00 +02:00');
  t.equal(
    formatExpiresAt(Date.UTC(2024, 0, 1, 23, 0, 0) / 1000, 'Europe/Paris'),
    '2024-01-02 00:00:00 +01:00',
  );
});

t.test('fractions of a second are dropped, not rounded', async (t) => {
  t.equal(formatExpiresAt(SUMMER + 0.999, 'UTC'), '2024-07-01 12:00:00 +00:00');
});

t.test('unknown zones and impossible times throw with a code', async (t) => {
  t.throws(() => formatExpiresAt(SUMMER, 'Mars/Olympus_Mons'), {
    name: 'TimeZoneError',
    code: 'INVALID_TIME_ZONE',
  });
  t.type(new TimeZoneError('x'), RangeError);
  t.throws(() => formatExpiresAt(Number.NaN, 'UTC'), RangeError);
  t.throws(() => formatExpiresAt(1e20, 'UTC'), RangeError);
});

t.test('isValidTimeZone', async (t) => {
  for (const zone of ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Etc/GMT-14']) {
    t.equal(isValidTimeZone(zone), true, zone);
  }
  for (const zone of ['', 'Mars/Olympus_Mons', 'Europe/Pari', 'GMT+25', '../etc/passwd']) {
    t.equal(isValidTimeZone(zone), false, zone);
  }
  t.equal(isValidTimeZone(undefined as unknown as string), false);
});
