-- Publishes a user's version: the number that moves with every change a
-- cached principal must see (revocation, suspension, limit). It only
-- ever grows, so publishers racing or arriving late cannot move it back.
--
-- KEYS[1]  the user's hash {v = version} (no expiry: it lives as long as
--          Redis's data)
-- ARGV[1]  the version to publish
--
-- Returns the version now held: max(current, ARGV[1]).
local cur = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('HSET', KEYS[1], 'v', v)
  return v
end
return cur
