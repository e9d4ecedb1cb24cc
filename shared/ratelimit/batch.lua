-- Many fixed-window decisions in one script call: window.lua's logic for
-- each key in turn, each with its own cost, on one reading of the clock.
-- Used by a Limiter on a single Redis (not a cluster: the keys may hash
-- to different slots) to decide a batch of concurrent requests in one
-- round trip and one script call instead of one each.
--
-- KEYS[2i-1]     the counter hash of decision i (a key may repeat: the
--                decisions are taken in order, each seeing the previous)
-- KEYS[2i]       the user's hash {v = version, m = marker} of decision i,
--                read only when ARGV[4i] is 1 or 2
-- ARGV[4i-3]     limit of decision i, in units
-- ARGV[4i-2]     window length in seconds of decision i
-- ARGV[4i-1]     cost of decision i in units (at least 1)
-- ARGV[4i]       0: not a user's quota; 1: a user's (report its version);
--                2: a user's, and lost windows are rebuilt (window.lua's
--                ARGV[4] = '1')
--
-- Returns {now seconds, now microseconds, allowed_1, used_1, start_1,
-- version_1, marker_1, allowed_2, ...}, allowed being 1, 0 or 2 (rebuild
-- first, nothing decided) as in window.lua. A decision is admitted only
-- when its whole cost fits (used + cost <= limit); a denied decision
-- changes nothing, so a later cheaper decision on the same key may still
-- fit.
local t = redis.call('TIME')
local now = tonumber(t[1])
local out = {t[1], t[2]}
for i = 1, #KEYS / 2 do
  local key = KEYS[2 * i - 1]
  local limit = tonumber(ARGV[4 * i - 3])
  local window = tonumber(ARGV[4 * i - 2])
  local cost = tonumber(ARGV[4 * i - 1])
  local kind = ARGV[4 * i]
  local start = now - (now % window)
  local version, marker = 0, false
  if kind ~= '0' then
    local u = redis.call('HMGET', KEYS[2 * i], 'v', 'm')
    version = tonumber(u[1]) or 0
    if kind == '2' then
      marker = tonumber(u[2])
      if not marker then
        marker = now * 1000000 + tonumber(t[2])
        redis.call('HSET', KEYS[2 * i], 'm', marker)
      end
    end
  end
  local cur = redis.call('HMGET', key, 's', 'n', 'm', 'w')
  local curStart, curWindow = tonumber(cur[1]), tonumber(cur[4])
  local resized = curStart and curWindow and curWindow ~= window and curStart + curWindow > start
  local same = curStart == start and not resized
  local allowed, used = 0, 0
  if marker and (start * 1000000 <= marker or resized) and not (same and tonumber(cur[3]) == marker) then
    allowed = 2
  else
    if same then
      used = tonumber(cur[2]) or 0
    end
    if used + cost <= limit then
      allowed = 1
      used = used + cost
      if same then
        redis.call('HSET', key, 'n', used)
      elseif marker then
        redis.call('HSET', key, 's', start, 'n', used, 'w', window, 'm', marker)
        redis.call('EXPIREAT', key, start + window + 1)
      else
        redis.call('HSET', key, 's', start, 'n', used, 'w', window)
        redis.call('EXPIREAT', key, start + window + 1)
      end
    end
  end
  out[#out + 1] = allowed
  out[#out + 1] = used
  out[#out + 1] = start
  out[#out + 1] = version
  out[#out + 1] = marker or 0
end
return out
