-- Gives back a request's units to every limit it was taken from
-- (multi.lua), so that billed always equals admitted: a fixed window's
-- count if that window is still current, a sliding window's bucket if it
-- is still held. Nothing goes below zero.
--
-- KEYS[i]        the counter of limit i
-- ARGV[1]        the units to give back
-- ARGV[2i]       limit i's algorithm, 'f', 's' or 'p' (counted as 'f')
-- ARGV[2i + 1]   limit i's stamp from multi.lua (window start or bucket)
--
-- Returns the number of counters given back to.
local n = tonumber(ARGV[1])
local done = 0
for i = 1, #KEYS do
  local key, stamp = KEYS[i], ARGV[2 * i + 1]
  if ARGV[2 * i] ~= 's' then
    local cur = redis.call('HMGET', key, 's', 'n')
    if tonumber(cur[1]) == tonumber(stamp) then
      redis.call('HSET', key, 'n', math.max(0, (tonumber(cur[2]) or 0) - n))
      done = done + 1
    end
  else
    local v = tonumber(redis.call('HGET', key, stamp))
    if v then
      redis.call('HSET', key, stamp, math.max(0, v - n))
      done = done + 1
    end
  end
end
return done
