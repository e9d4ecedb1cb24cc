-- Fixed-window rate limit decision, atomic in one round trip.
--
-- KEYS[1]  the counter: a hash {s = window start (unix s), n = used}
-- KEYS[2]  optional: the user's hash {v = version} (a user's quota only);
--          its version is returned, 0 when absent or without KEYS[2]
-- ARGV[1]  limit: units allowed per window
-- ARGV[2]  window length in seconds; windows align to the Unix epoch
-- ARGV[3]  cost of this request in units (1 without a cost; 0 only reads);
--          admitted only when the whole cost fits (used + cost <= limit)
--
-- Returns {allowed (1|0), used, window start, now seconds, now
-- microseconds, version}. A denied request changes nothing, so it
-- consumes no quota. The clock is Redis's own TIME, so every replica
-- decides with the same clock.
-- (Shape after go-redis/redis_rate's GCRA script: one key, TIME inside,
-- expiry set with the write.)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local version = 0
if #KEYS > 1 then
  version = tonumber(redis.call('HGET', KEYS[2], 'v')) or 0
end

local t = redis.call('TIME')
local now = tonumber(t[1])
local start = now - (now % window)

local cur = redis.call('HMGET', KEYS[1], 's', 'n')
local used = 0
if tonumber(cur[1]) == start then
  used = tonumber(cur[2]) or 0
end

if cost > 0 and used + cost > limit then
  return {0, used, start, t[1], t[2], version}
end
if cost > 0 then
  used = used + cost
  if tonumber(cur[1]) == start then
    redis.call('HSET', KEYS[1], 'n', used) -- expiry already set this window
  else
    redis.call('HSET', KEYS[1], 's', start, 'n', used)
    redis.call('EXPIREAT', KEYS[1], start + window + 1)
  end
end
return {1, used, start, t[1], t[2], version}
