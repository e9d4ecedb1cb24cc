-- Seeds a user's sliding-window counter (multi.lua) from the durable
-- ledger after Redis lost its data, as seed.lua does for a fixed window:
-- when the ledger holds more units for the span than the buckets count,
-- the difference is added to the current bucket (so those units are
-- counted for a whole window from now: never less than they should be),
-- and the counter is marked as built under the marker. Concurrent
-- rebuilders are safe: a seed only ever raises the count to the
-- ledger's, never adds the same units twice.
--
-- KEYS[1]  the counter (multi.lua's KEYS[1 + i])
-- KEYS[2]  the user's hash
-- ARGV[1]  the marker multi.lua answered with
-- ARGV[2]  window length in seconds
-- ARGV[3]  the units the ledger holds since the span's start
--
-- Returns the count now held, or -1 when nothing was seeded (the marker
-- changed, or the span no longer reaches back to the marker: no rebuild
-- is needed any more).
local marker = tonumber(redis.call('HGET', KEYS[2], 'm'))
if marker ~= tonumber(ARGV[1]) then
  return -1
end
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = math.max(1, math.floor(window * 1000 / 60))
local k = math.ceil(window * 1000 / b)
local j = math.floor(nowms / b)
local first = j - k
if first * b * 1000 > marker then
  return -1
end
local h = redis.call('HGETALL', KEYS[1])
local n = 0
for x = 1, #h, 2 do
  if h[x] ~= 'm' and tonumber(h[x]) >= first then
    n = n + tonumber(h[x + 1])
  end
end
local ledger = tonumber(ARGV[3])
if ledger > n then
  redis.call('HINCRBY', KEYS[1], j, ledger - n)
  n = ledger
end
redis.call('HSET', KEYS[1], 'm', marker)
redis.call('PEXPIREAT', KEYS[1], (j + k + 1) * b + 1000)
return n
