-- Seeds a user's window counter from the durable ledger after Redis lost
-- its data (window.lua answered 2): the counter becomes
-- max(what it holds for this window, the ledger's units) and is marked as
-- built under the current marker, so that the next decision decides.
-- Taking the max makes concurrent rebuilders (several replicas, each
-- with its own reading of the ledger) safe: a seed never lowers a
-- counter, and units admitted after an earlier seed are never counted
-- twice.
--
-- KEYS[1]  the user's counter (window.lua's KEYS[1])
-- KEYS[2]  the user's hash (window.lua's KEYS[2])
-- ARGV[1]  the marker window.lua answered with
-- ARGV[2]  the window start it answered with (unix s)
-- ARGV[3]  window length in seconds
-- ARGV[4]  the units the ledger holds for the window
-- ARGV[5]  optional: the window's end (unix s) for a window that is not
--          aligned to the epoch (a calendar month, multi.lua's 'p');
--          ARGV[3] is then ignored
--
-- Returns the counter's value, or -1 when nothing was seeded: the marker
-- changed (the data was lost again; the caller's next decision asks
-- anew) or the window is over (the next one needs no rebuild).
local marker = tonumber(redis.call('HGET', KEYS[2], 'm'))
if marker ~= tonumber(ARGV[1]) then
  return -1
end
local start = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1])
local finish = start + window
if ARGV[5] then
  finish = tonumber(ARGV[5])
  if now < start or now >= finish then
    return -1
  end
elseif now - (now % window) ~= start then
  return -1
end
local cur = redis.call('HMGET', KEYS[1], 's', 'n', 'w')
local n = 0
if tonumber(cur[1]) == start and (not tonumber(cur[3]) or tonumber(cur[3]) == window) then
  n = tonumber(cur[2]) or 0
end
local ledger = tonumber(ARGV[4])
if ledger > n then
  n = ledger
end
redis.call('HSET', KEYS[1], 's', start, 'n', n, 'w', window, 'm', marker)
redis.call('EXPIREAT', KEYS[1], finish + 1)
return n
