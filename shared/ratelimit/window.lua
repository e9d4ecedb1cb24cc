-- Fixed-window rate limit decision, atomic in one round trip.
--
-- KEYS[1]  the counter: a hash {s = window start (unix s), n = used,
--          w = window length (s), m = the marker it was built under (a
--          user's quota only)}
-- KEYS[2]  optional: the user's hash {v = version, m = marker} (a user's
--          quota only); its version is returned, 0 when absent
-- ARGV[1]  limit: units allowed per window
-- ARGV[2]  window length in seconds; windows align to the Unix epoch
-- ARGV[3]  cost of this request in units (1 without a cost; 0 only reads);
--          admitted only when the whole cost fits (used + cost <= limit)
-- ARGV[4]  optional, with KEYS[2]: '1' when the caller rebuilds lost
--          windows from the durable ledger (see below)
--
-- Returns {allowed, used, window start, now seconds, now microseconds,
-- version, marker}: allowed is 1 (admitted) or 0 (denied), or 2 when the
-- window must first be rebuilt (seed.lua) and nothing was decided. A
-- denied request changes nothing, so it consumes no quota. The clock is
-- Redis's own TIME, so every replica decides with the same clock.
--
-- Loss of Redis's data (FLUSHALL, a restart without persistence, a
-- failover to an empty replica) is detected by the marker, not by a
-- missing counter (counters are missing at every window start): the
-- user's hash holds the Redis time, in microseconds, at which its marker
-- was created, and disappears with the data. When the marker is missing
-- it is created now. A window that started before its marker existed
-- may have admitted units Redis no longer knows of, so unless its
-- counter was built under the current marker the script does not decide:
-- it answers 2 and the caller seeds the counter from the ledger.
-- The same holds when the user's window length changed (a limit override
-- set or cleared) while the counter's window still overlaps the new one:
-- the counter counted another span, so the units already admitted in the
-- new window are only known to the ledger. Without that, a change of
-- window would forget them or not, depending on the marker's age.
-- (Shape after go-redis/redis_rate's GCRA script: one key, TIME inside,
-- expiry set with the write.)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1])
local start = now - (now % window)

local version, marker = 0, false
if #KEYS > 1 then
  local u = redis.call('HMGET', KEYS[2], 'v', 'm')
  version = tonumber(u[1]) or 0
  if ARGV[4] == '1' then
    marker = tonumber(u[2])
    if not marker then
      marker = now * 1000000 + tonumber(t[2])
      redis.call('HSET', KEYS[2], 'm', marker)
    end
  end
end

local cur = redis.call('HMGET', KEYS[1], 's', 'n', 'm', 'w')
local curStart, curWindow = tonumber(cur[1]), tonumber(cur[4])
-- A counter without w predates it and was built for this window length.
local resized = curStart and curWindow and curWindow ~= window and curStart + curWindow > start
local same = curStart == start and not resized
if marker and (start * 1000000 <= marker or resized) and not (same and tonumber(cur[3]) == marker) then
  return {2, 0, start, t[1], t[2], version, marker}
end
local used = 0
if same then
  used = tonumber(cur[2]) or 0
end

if cost > 0 and used + cost > limit then
  return {0, used, start, t[1], t[2], version, marker or 0}
end
if cost > 0 then
  used = used + cost
  if same then
    redis.call('HSET', KEYS[1], 'n', used) -- expiry already set this window
  elseif marker then
    redis.call('HSET', KEYS[1], 's', start, 'n', used, 'w', window, 'm', marker)
    redis.call('EXPIREAT', KEYS[1], start + window + 1)
  else
    redis.call('HSET', KEYS[1], 's', start, 'n', used, 'w', window)
    redis.call('EXPIREAT', KEYS[1], start + window + 1)
  end
end
return {1, used, start, t[1], t[2], version, marker or 0}
