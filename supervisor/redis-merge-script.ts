/**
 * The merge of a sync record into Redis, run atomically by the server (EVALSHA through ioredis
 * defineCommand): the same join as shared/sync-record.ts joinRecords, then the key's expiry set
 * to the record's `expiresAt` (EXPIREAT: the record lives as long as the revocation, a lift as
 * long as the revocation it lifted), then, only when the stored record changed, one message on
 * the channel. Returns the stored record: [changed (0/1), revokedAt, liftedAt, until,
 * notBefore, expiresAt, origin], numbers as decimal strings.
 *
 * KEYS[1]: `<prefix>rev:<kind>:<subject>`. ARGV: revokedAt, liftedAt, until, notBefore,
 * expiresAt, origin, channel, publishing node id, kind, subject.
 *
 * Numbers stay exact: the bus sends integers below 1e14 (ms) and Lua numbers are doubles;
 * cjson writes 14 significant digits, enough for them.
 */
export const MERGE_SCRIPT = `
local function num(v) return tonumber(v) or 0 end
local key = KEYS[1]
local n = { rA = num(ARGV[1]), lA = num(ARGV[2]), u = num(ARGV[3]), nb = num(ARGV[4]),
            ex = num(ARGV[5]), o = ARGV[6] }
local f = redis.call('HMGET', key, 'revokedAt', 'liftedAt', 'until', 'notBefore', 'expiresAt', 'origin')
local r
local changed = 1
if not f[1] then
  r = n
  r.ex = math.max(n.ex, n.u)
else
  local a = { rA = num(f[1]), lA = num(f[2]), u = num(f[3]), nb = num(f[4]), ex = num(f[5]),
              o = f[6] or '' }
  local lifted = math.max(a.lA, n.lA)
  local aOn = a.rA > 0 and a.rA >= lifted
  local bOn = n.rA > 0 and n.rA >= lifted
  r = { lA = lifted }
  if aOn == bOn and (aOn or a.rA == n.rA) then
    r.rA = math.max(a.rA, n.rA); r.u = math.max(a.u, n.u); r.nb = math.max(a.nb, n.nb)
  elseif aOn or ((not bOn) and a.rA > n.rA) then
    r.rA = a.rA; r.u = a.u; r.nb = a.nb
  else
    r.rA = n.rA; r.u = n.u; r.nb = n.nb
  end
  local la = math.max(a.rA, a.lA)
  local lb = math.max(n.rA, n.lA)
  if lb > la or (lb == la and n.o > a.o) then r.o = n.o else r.o = a.o end
  r.ex = math.max(a.ex, n.ex, r.u)
  if r.rA == a.rA and r.lA == a.lA and r.u == a.u and r.nb == a.nb and r.ex == a.ex and r.o == a.o then
    changed = 0
  end
end
local function s(x) return string.format('%.0f', x) end
local state = 'lifted'
if r.rA > 0 and r.rA >= r.lA then state = 'revoked' end
if changed == 1 then
  redis.call('HSET', key, 'state', state, 'revokedAt', s(r.rA), 'liftedAt', s(r.lA), 'until', s(r.u),
    'notBefore', s(r.nb), 'expiresAt', s(r.ex), 'origin', r.o)
  redis.call('EXPIREAT', key, s(r.ex))
  redis.call('PUBLISH', ARGV[7], cjson.encode({ v = 1, from = ARGV[8], kind = ARGV[9],
    subject = ARGV[10], revokedAt = r.rA, liftedAt = r.lA, ['until'] = r.u, notBefore = r.nb,
    expiresAt = r.ex, origin = r.o }))
end
return { changed, s(r.rA), s(r.lA), s(r.u), s(r.nb), s(r.ex), r.o }
`;
