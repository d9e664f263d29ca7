-- ReservePoolSlot. KEYS[1] pool:reserved.
-- ARGV: prefix, now, reservation, max, ttl_ms.
-- A slot is a place in the pool for one more unclaimed workspace: starting,
-- available, or reserved (its Start is under way). Reserving counts all
-- three against max in one step, so replenishers racing (two replicas, a
-- lease handover) never start more than max. Reservations expire: a
-- replenisher that crashed mid-start frees its slot after ttl.
local res, maxn, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local rk = KEYS[1]
redis.call('ZREMRANGEBYSCORE', rk, '-inf', NOW)
local n = redis.call('ZCARD', key_pool_starting()) + redis.call('ZCARD', key_pool_available())
  + redis.call('ZCARD', rk)
if n >= maxn then return 0 end
redis.call('ZADD', rk, tonumber(NOW) + ttl, res)
return 1
