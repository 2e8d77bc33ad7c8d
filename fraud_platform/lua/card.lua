-- A card's event state: read the windows as of t, then insert the transaction.
--
-- KEYS[1]  sorted set  one member per event, scored by its instant (microseconds since the
--                      epoch): transaction_id, a NUL byte, merchant_id, then
--                      struct '<ddddH' of instant, amount, latitude, longitude (NaN = null)
--                      and the merchant id's length, so a read parses each member from its
--                      end in one call, whatever bytes the ids hold
-- KEYS[2]  hash        transaction_id -> "" (the ids applied, for idempotency);
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
--
-- Members of one instant sort by their bytes, which start with the transaction id and a
-- NUL: the ids' order (an id that is a prefix of another sorts first), as offline. Only
-- ids that themselves hold a NUL byte could sort otherwise.

local zkey, ikey = KEYS[1], KEYS[2]
local TAIL = 34  -- bytes of a member's struct '<ddddH': four doubles, the merchant id's length
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
  -- The hot path of every score, so written for it: one ZRANGEBYSCORE returns the
  -- events themselves (no scores: they would come back as text to parse), each parsed by
  -- one struct.unpack from its end; bounds computed once; the windows nested (ascending,
  -- checked by event_state), so an event's windows are a suffix of them, found from the
  -- longest; the last two transactions in locals, not a table per event. Each window adds
  -- its events in ascending order, so its sum is the same double whatever the layout.
  local bounds = {}
  for i = 1, n do bounds[i] = t - tonumber(ARGV[5 + i]) end
  local events = redis.call('ZRANGEBYSCORE', zkey, string.format('%d', bounds[n]), '(' .. ARGV[2])
  local count, sum, max = {}, {}, {}
  for i = 1, n do count[i] = 0; sum[i] = 0.0; max[i] = false end
  local distinct_from = t - distinct_window
  local merchants, distinct = {}, 0
  local last_ts, last_amount, last_lat, last_lon = nil, nil, nil, nil
  local prev_ts, prev_lat, prev_lon = nil, nil, nil
  local unpack_tail, sub = struct.unpack, string.sub
  for k = 1, #events do
    local event = events[k]
    local size = #event
    local ts, amount, lat, lon, merchant_size = unpack_tail('<ddddH', event, size - TAIL + 1)
    if lat ~= lat then lat = '' end
    if lon ~= lon then lon = '' end
    local i = n
    while i >= 1 and ts >= bounds[i] do
      count[i] = count[i] + 1
      sum[i] = sum[i] + amount
      if max[i] == false or amount > max[i] then max[i] = amount end
      i = i - 1
    end
    if ts >= distinct_from then
      local merchant = sub(event, size - TAIL - merchant_size + 1, size - TAIL)
      if not merchants[merchant] then
        merchants[merchant] = true
        distinct = distinct + 1
      end
    end
    -- Ascending by instant, then by transaction_id: the last of an instant wins.
    if last_ts ~= nil and ts > last_ts then
      prev_ts, prev_lat, prev_lon = last_ts, last_lat, last_lon
    end
    last_ts, last_amount, last_lat, last_lon = ts, amount, lat, lon
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
  if redis.call('HEXISTS', ikey, id) == 0 then
    local newest = tonumber(redis.call('HGET', ikey, '') or ARGV[2])
    if t > newest then newest = t end
    local cutoff = newest - history
    if t > cutoff then
      local merchant, lat, lon = ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
      local nan = 0 / 0
      redis.call('ZADD', zkey, ARGV[2], id .. '\0' .. merchant .. struct.pack('<ddddH', t,
                 tonumber(ARGV[base + 1]), lat == '' and nan or tonumber(lat),
                 lon == '' and nan or tonumber(lon), #merchant))
      redis.call('HSET', ikey, id, '', '', string.format('%d', newest))
      inserted = 1
      local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', string.format('%d', cutoff))
      if #old > 0 then
        local ids = {}
        for k = 1, #old do
          local event = old[k]
          local merchant_size = struct.unpack('<H', event, #event - 1)
          ids[k] = string.sub(event, 1, #event - TAIL - merchant_size - 1)  -- before the NUL
        end
        for first = 1, #ids, 1000 do
          redis.call('HDEL', ikey, unpack(ids, first, math.min(#ids, first + 999)))
        end
        redis.call('ZREMRANGEBYSCORE', zkey, '-inf', string.format('%d', cutoff))
      end
    end
  end
  out[#out + 1] = inserted
end
return out
