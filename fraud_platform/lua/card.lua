-- A card's event state: read the windows as of t, then insert the transaction.
--
-- KEYS[1]  sorted set  transaction_id -> event instant (microseconds since the epoch)
-- KEYS[2]  hash        transaction_id -> cmsgpack(instant, amount, merchant_id, latitude,
--                      longitude): the instant again, so a read needs no scores;
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
  -- The hot path of every score, so written for it: the ids without their scores (a
  -- score comes back as text to parse; the blob holds the instant as a number); bounds
  -- computed once; the windows nested (ascending, checked by event_state), so an event's
  -- windows are a suffix of them, found from the longest; the last two transactions in
  -- locals, not a table per event. Each window adds its events in ascending order, so its
  -- sum is the same double whatever the layout.
  local bounds = {}
  for i = 1, n do bounds[i] = t - tonumber(ARGV[5 + i]) end
  local ids = redis.call('ZRANGEBYSCORE', zkey, string.format('%d', bounds[n]), '(' .. ARGV[2])
  local count, sum, max = {}, {}, {}
  for i = 1, n do count[i] = 0; sum[i] = 0.0; max[i] = false end
  local distinct_from = t - distinct_window
  local merchants, distinct = {}, 0
  local last_ts, last_amount, last_lat, last_lon = nil, nil, nil, nil
  local prev_ts, prev_lat, prev_lon = nil, nil, nil
  local unpack_event = cmsgpack.unpack
  for first = 1, #ids, 1000 do  -- HMGET's arguments in chunks: Lua's stack is bounded
    local blobs = redis.call('HMGET', hkey, unpack(ids, first, math.min(#ids, first + 999)))
    for k = 1, #blobs do
      local ts, amount, merchant, lat, lon = unpack_event(blobs[k])
      local i = n
      while i >= 1 and ts >= bounds[i] do
        count[i] = count[i] + 1
        sum[i] = sum[i] + amount
        if max[i] == false or amount > max[i] then max[i] = amount end
        i = i - 1
      end
      if ts >= distinct_from and not merchants[merchant] then
        merchants[merchant] = true
        distinct = distinct + 1
      end
      -- Ascending by instant, then by transaction_id: the last of an instant wins.
      if last_ts ~= nil and ts > last_ts then
        prev_ts, prev_lat, prev_lon = last_ts, last_lat, last_lon
      end
      last_ts, last_amount, last_lat, last_lon = ts, amount, lat, lon
    end
  end
  for i = 1, n do
    out[#out + 1] = count[i]; out[#out + 1] = g(sum[i]); out[#out + 1] = g(max[i])
  end
  out[#out + 1] = distinct
  if last_ts ~= nil then
    out[#out + 1] = last_ts; out[#out + 1] = g(last_amount)
    out[#out + 1] = g(last_lat); out[#out + 1] = g(last_lon)
  else
    for _ = 1, 4 do out[#out + 1] = false end
  end
  if prev_ts ~= nil then
    out[#out + 1] = prev_ts; out[#out + 1] = g(prev_lat); out[#out + 1] = g(prev_lon)
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
      redis.call('HSET', hkey, id, cmsgpack.pack(t, tonumber(ARGV[base + 1]), ARGV[base + 2],
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
