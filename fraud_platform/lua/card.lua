-- A card's event state: read the windows as of t, then insert the transaction.
--
-- KEYS[1]  sorted set  transaction_id -> event instant (microseconds since the epoch)
-- KEYS[2]  hash        transaction_id -> cmsgpack(amount, merchant_id, latitude, longitude);
--                      field "" -> the newest instant ever applied
-- ARGV[1]  "r" read, "a" apply, "ra" both (the read comes first: it sees the state before)
-- ARGV[2]  t, the transaction's instant (an integer string, microseconds)
-- ARGV[3]  history kept (microseconds): events older than newest - history are dropped
-- ARGV[4]  the distinct-merchants window (microseconds)
-- ARGV[5]  n, the number of windows, then the n windows (microseconds, the longest last)
-- ARGV[6+n .. 10+n]  transaction_id, amount, merchant_id, latitude, longitude ("" = null)
--
-- The read covers the events with instants in [t - w, t): strictly before t, so events
-- at the same instant never see each other, whatever order they arrive in. It returns,
-- flat: per window count, sum, max; the distinct merchants; then the last transaction
-- (instant, amount, latitude, longitude) and the one before it at an earlier instant
-- (instant, latitude, longitude), false where absent. Numbers that are not integers are
-- returned as "%.17g" strings (a Lua number returned to Redis is truncated to an
-- integer; 17 significant digits give the double back exactly). Apply returns 1 when
-- the event was inserted, 0 when it was already there or too old to matter.

local zkey, hkey = KEYS[1], KEYS[2]
local flags = ARGV[1]
local t = tonumber(ARGV[2])
local history = tonumber(ARGV[3])
local distinct_window = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {}

local function g(x)
  if x == nil or x == false or x == '' then return false end
  return string.format('%.17g', x)
end

if string.find(flags, 'r', 1, true) then
  local windows = {}
  for i = 1, n do windows[i] = tonumber(ARGV[5 + i]) end
  local flat = redis.call('ZRANGEBYSCORE', zkey, string.format('%d', t - windows[n]),
                          '(' .. ARGV[2], 'WITHSCORES')
  local count, sum, max = {}, {}, {}
  for i = 1, n do count[i] = 0; sum[i] = 0.0; max[i] = false end
  local merchants, distinct = {}, 0
  local last, prev = nil, nil
  local m = #flat / 2
  local chunk = 1000
  for first = 1, m, chunk do
    local ids = {}
    for j = first, math.min(m, first + chunk - 1) do ids[#ids + 1] = flat[2 * j - 1] end
    local blobs = redis.call('HMGET', hkey, unpack(ids))
    for k = 1, #ids do
      local ts = tonumber(flat[2 * (first + k - 1)])
      local amount, merchant, lat, lon = cmsgpack.unpack(blobs[k])
      for i = 1, n do
        if ts >= t - windows[i] then
          count[i] = count[i] + 1
          sum[i] = sum[i] + amount
          if max[i] == false or amount > max[i] then max[i] = amount end
        end
      end
      if ts >= t - distinct_window and not merchants[merchant] then
        merchants[merchant] = true
        distinct = distinct + 1
      end
      -- Ascending by instant, then by transaction_id: the last of an instant wins.
      if last ~= nil and ts > last[1] then prev = last end
      last = {ts, amount, lat, lon}
    end
  end
  for i = 1, n do
    out[#out + 1] = count[i]; out[#out + 1] = g(sum[i]); out[#out + 1] = g(max[i])
  end
  out[#out + 1] = distinct
  if last then
    out[#out + 1] = last[1]; out[#out + 1] = g(last[2])
    out[#out + 1] = g(last[3]); out[#out + 1] = g(last[4])
  else
    for _ = 1, 4 do out[#out + 1] = false end
  end
  if prev then
    out[#out + 1] = prev[1]; out[#out + 1] = g(prev[3]); out[#out + 1] = g(prev[4])
  else
    for _ = 1, 3 do out[#out + 1] = false end
  end
end

if string.find(flags, 'a', 1, true) then
  local base = 6 + n
  local id = ARGV[base]
  local inserted = 0
  if not redis.call('ZSCORE', zkey, id) then
    local newest = tonumber(redis.call('HGET', hkey, '') or ARGV[2])
    if t > newest then newest = t end
    local cutoff = newest - history
    if t > cutoff then
      local lat, lon = ARGV[base + 3], ARGV[base + 4]
      redis.call('ZADD', zkey, ARGV[2], id)
      redis.call('HSET', hkey, id, cmsgpack.pack(tonumber(ARGV[base + 1]), ARGV[base + 2],
                 lat == '' and '' or tonumber(lat), lon == '' and '' or tonumber(lon)),
                 '', string.format('%d', newest))
      inserted = 1
      local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', string.format('%d', cutoff))
      if #old > 0 then
        for first = 1, #old, 1000 do
          redis.call('HDEL', hkey, unpack(old, first, math.min(#old, first + 999)))
        end
        redis.call('ZREMRANGEBYSCORE', zkey, '-inf', string.format('%d', cutoff))
      end
    end
  end
  out[#out + 1] = inserted
end
return out
