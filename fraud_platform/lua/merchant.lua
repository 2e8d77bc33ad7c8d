-- A merchant's event state: transactions and fraud labels, counted in windows as of t.
--
-- KEYS[1]  sorted set  transaction_id -> transaction instant (microseconds)
-- KEYS[2]  sorted set  transaction_id -> instant its fraud label became known
-- KEYS[3]  string      the newest instant ever applied
-- ARGV[1]  "r" read, "a" apply the transaction, "l" apply a fraud label; "ra" reads first
-- ARGV[2]  t: the transaction's instant, or the label's for "l" (integer microseconds)
-- ARGV[3]  history kept (microseconds)
-- ARGV[4]  n, the number of windows, then the n windows (microseconds)
-- ARGV[5+n]  transaction_id
--
-- The read counts, per window, the transactions and the fraud labels with instants in
-- [t - w, t): a label known at exactly t is not known yet to the transaction at t. It
-- returns, flat, per window: transactions, frauds. An apply returns 1 when inserted, 0
-- when the event was already there or too old to matter.

local tkey, lkey, nkey = KEYS[1], KEYS[2], KEYS[3]
local flags = ARGV[1]
local t = tonumber(ARGV[2])
local history = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local out = {}

if string.find(flags, 'r', 1, true) then
  local before = '(' .. ARGV[2]
  for i = 1, n do
    local from = string.format('%d', t - tonumber(ARGV[4 + i]))
    out[#out + 1] = redis.call('ZCOUNT', tkey, from, before)
    out[#out + 1] = redis.call('ZCOUNT', lkey, from, before)
  end
end

local target = nil
if string.find(flags, 'a', 1, true) then target = tkey end
if string.find(flags, 'l', 1, true) then target = lkey end
if target then
  local id = ARGV[5 + n]
  local inserted = 0
  if not redis.call('ZSCORE', target, id) then
    local newest = tonumber(redis.call('GET', nkey) or ARGV[2])
    if t > newest then newest = t end
    local cutoff = newest - history
    if t > cutoff then
      redis.call('ZADD', target, ARGV[2], id)
      redis.call('SET', nkey, string.format('%d', newest))
      inserted = 1
      local bound = string.format('%d', cutoff)
      redis.call('ZREMRANGEBYSCORE', tkey, '-inf', bound)
      redis.call('ZREMRANGEBYSCORE', lkey, '-inf', bound)
    end
  end
  out[#out + 1] = inserted
end
return out
