-- Several limits of one user decided at once, atomically: a request is
-- admitted only when its cost fits every limit, and a request denied by
-- any limit takes nothing from the others. One round trip, one reading
-- of Redis's clock (TIME), as window.lua.
--
-- KEYS[1]      the user's hash {v = version, m = marker} (window.lua's KEYS[2])
-- KEYS[1 + i]  the counter of limit i; every key is tagged {user:ID}, so
--              they share a cluster slot
-- ARGV[1]      cost in units (0 only reads)
-- ARGV[2]      '1' when the caller rebuilds lost windows from the ledger
--              (the marker logic of window.lua), else '0'
-- ARGV[3i]     limit i: units per window
-- ARGV[3i + 1] limit i: window in seconds
-- ARGV[3i + 2] limit i: algorithm, 'f' (fixed), 's' (sliding) or 'p'
--              (period: the calendar month, UTC; the window is ignored)
--
-- Fixed: window.lua's counter {s = window start, n = used, m = marker},
-- windows aligned to the Unix epoch.
--
-- Period: the same counter over the calendar month (UTC) of Redis's
-- clock: a spend cap converted into units. Its count must include what
-- the month held before the counter existed (the cap may be set in the
-- middle of a month), so with a ledger every counter not built under the
-- current marker for this month is seeded first (rebuild = 1), not only
-- after a loss of Redis's data.
--
-- Sliding: the window is cut into buckets of b = max(1, floor(window ms
-- / 60)) milliseconds, aligned to the epoch; the counter is a hash of
-- bucket index -> units (and m = marker). A decision at bucket j counts
-- buckets j - k .. j, with k = ceil(window ms / b): a span that starts
-- k * b >= window before the current bucket, so every unit taken in the
-- last `window` is counted and no interval of length `window` ever holds
-- more than the limit. A unit taken at time T in bucket i is counted
-- until (i + k + 1) * b, that is for between k * b >= window and
-- (k + 1) * b < window + 2b after T: the price of bucketing is that a
-- unit comes back up to 2b (1/30 of the window; 32 ms of a 1 s window,
-- 2 s of a minute) later than an exact log would return it.
-- (An exact sliding log would keep one entry per request; the buckets
-- keep at most k + 1 fields whatever the traffic.)
--
-- Returns {allowed, now s, now µs, version, marker, then for each limit:
-- used, stamp, span start s, reset ms, retry ms, rebuild}:
--   allowed  1 admitted, 0 denied, 2 nothing decided: a limit's window
--            must first be rebuilt from the ledger (rebuild = 1 on it)
--   used     units counted in the limit's window (this request's included
--            when admitted)
--   stamp    where this request's units went, for a refund: the window
--            start (fixed) or the bucket index (sliding)
--   span     start (unix s) of what the limit counts, for a rebuild
--   reset    unix ms when units next return (fixed: the window's end;
--            sliding: when the oldest counted bucket leaves the window)
--   retry    0 when the cost fits this limit, else the unix ms from which
--            it fits (as far as this limit is concerned)
-- Days since 1970-01-01 of a civil date, and back (Howard Hinnant's
-- algorithms, http://howardhinnant.github.io/date_algorithms.html).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function month_bounds(now)
  local z = math.floor(now / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  if m <= 2 then y = y + 1 end
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  return days_from_civil(y, m, 1) * 86400, days_from_civil(ny, nm, 1) * 86400
end

local cost = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1])
local nowms = now * 1000 + math.floor(tonumber(t[2]) / 1000)

local u = redis.call('HMGET', KEYS[1], 'v', 'm')
local version = tonumber(u[1]) or 0
local marker = false
if ARGV[2] == '1' then
  marker = tonumber(u[2])
  if not marker then
    marker = now * 1000000 + tonumber(t[2])
    redis.call('HSET', KEYS[1], 'm', marker)
  end
end

local st = {}
local lost, fits = false, true
for i = 1, #KEYS - 1 do
  local key = KEYS[i + 1]
  local limit = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local s = {key = key, limit = limit, window = window, alg = ARGV[3 * i + 2], rebuild = 0, retry = 0}
  if s.alg == 'f' or s.alg == 'p' then
    local start, finish
    if s.alg == 'f' then
      start = now - (now % window)
      finish = start + window
    else
      start, finish = month_bounds(now)
    end
    local cur = redis.call('HMGET', key, 's', 'n', 'm')
    s.same = tonumber(cur[1]) == start
    s.used = 0
    if s.same then
      s.used = tonumber(cur[2]) or 0
    end
    s.stamp, s.span, s.reset, s.expire = start, start, finish * 1000, finish + 1
    local built = s.same and tonumber(cur[3]) == marker
    if marker and not built and (s.alg == 'p' or start * 1000000 <= marker) then
      s.rebuild = 1
    end
    if s.used + cost > limit then
      s.retry = s.reset
    end
  else
    local b = math.max(1, math.floor(window * 1000 / 60))
    local k = math.ceil(window * 1000 / b)
    local j = math.floor(nowms / b)
    local first = j - k
    local h = redis.call('HGETALL', key)
    local buckets, stale, m = {}, {}, nil
    s.used = 0
    for x = 1, #h, 2 do
      if h[x] == 'm' then
        m = tonumber(h[x + 1])
      else
        local idx = tonumber(h[x])
        if idx < first then
          stale[#stale + 1] = h[x]
        else
          local v = tonumber(h[x + 1])
          s.used = s.used + v
          buckets[#buckets + 1] = {idx, v}
        end
      end
    end
    if #stale > 0 then
      redis.call('HDEL', key, unpack(stale))
    end
    table.sort(buckets, function(a, c) return a[1] < c[1] end)
    s.b, s.k, s.stamp = b, k, j
    s.span = math.floor(first * b / 1000)
    s.reset = nowms + window * 1000
    for _, bk in ipairs(buckets) do
      if bk[2] > 0 then
        s.reset = (bk[1] + k + 1) * b
        break
      end
    end
    if marker and first * b * 1000 <= marker and m ~= marker then
      s.rebuild = 1
    end
    if s.used + cost > limit then
      local need = s.used + cost - limit
      s.retry = (j + k + 1) * b -- when the request can never fit: every current unit has left
      local freed = 0
      for _, bk in ipairs(buckets) do
        freed = freed + bk[2]
        if freed >= need then
          s.retry = (bk[1] + k + 1) * b
          break
        end
      end
    end
  end
  if s.rebuild == 1 then
    lost = true
  end
  if cost > 0 and s.retry > 0 then
    fits = false
  end
  st[i] = s
end

local allowed = 1
if lost then
  allowed = 2
elseif not fits then
  allowed = 0
elseif cost > 0 then
  for _, s in ipairs(st) do
    if s.alg ~= 's' then
      if s.same then
        redis.call('HSET', s.key, 'n', s.used + cost)
      elseif marker then
        redis.call('HSET', s.key, 's', s.stamp, 'n', s.used + cost, 'm', marker)
        redis.call('EXPIREAT', s.key, s.expire)
      else
        redis.call('HSET', s.key, 's', s.stamp, 'n', s.used + cost)
        redis.call('EXPIREAT', s.key, s.expire)
      end
    else
      redis.call('HINCRBY', s.key, s.stamp, cost)
      redis.call('PEXPIREAT', s.key, (s.stamp + s.k + 1) * s.b + 1000)
      if s.reset > (s.stamp + s.k + 1) * s.b then
        s.reset = (s.stamp + s.k + 1) * s.b
      end
    end
    s.used = s.used + cost
  end
end

local out = {allowed, t[1], t[2], version, marker or 0}
for _, s in ipairs(st) do
  out[#out + 1] = s.used
  out[#out + 1] = s.stamp
  out[#out + 1] = s.span
  out[#out + 1] = s.reset
  out[#out + 1] = s.retry
  out[#out + 1] = s.rebuild
end
return out
