-- Gives back quota taken by a request that was then not served (its usage
-- could not be recorded), so that billed always equals admitted.
--
-- KEYS[1]  the counter hash of window.lua
-- ARGV[1]  the window start the quota was taken in
-- ARGV[2]  how much to give back
--
-- Returns the new used count, or -1 when the window has already rolled
-- over (nothing to give back).
local cur = redis.call('HMGET', KEYS[1], 's', 'n')
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then
  return -1
end
local n = (tonumber(cur[2]) or 0) - tonumber(ARGV[2])
if n < 0 then n = 0 end
redis.call('HSET', KEYS[1], 'n', n)
return n
