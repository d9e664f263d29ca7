-- AcquireProvisionLock. KEYS[1] lock. ARGV: prefix, now, holder, ttl_ms.
-- Expiry is judged by the caller's clock (injectable); PEXPIRE only
-- garbage-collects the key.
local lk, holder, ttl = KEYS[1], ARGV[3], tonumber(ARGV[4])
local cur = redis.call('HMGET', lk, 'holder', 'expires')
if cur[1] and cur[1] ~= holder and tonumber(cur[2] or '0') > tonumber(NOW) then
  return 0
end
redis.call('HSET', lk, 'holder', holder, 'expires', tonumber(NOW) + ttl)
redis.call('PEXPIRE', lk, ttl)
return 1
