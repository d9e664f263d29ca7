-- AddPoolWorkspace. KEYS[1] ws. ARGV: prefix, now, wid, token, tenant, endpoint, reservation.
-- Records a started warm-pool workspace and takes its reservation's place.
-- Events may have come first: a ready workspace joins the available
-- inventory at once, a stopped one nowhere.
local wk, wid, token, tenant, ep, res = KEYS[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if res ~= '' then redis.call('ZREM', key_pool_reserved(), res) end
local st = redis.call('HGET', wk, 'state')
if st == 'stopped' then
  pool_changed()
  return {'stopped', encode(wk)}
end
if (redis.call('HGET', wk, 'conversation') or '') ~= '' then
  return {'claimed', encode(wk)}
end
redis.call('HSET', wk, 'pool', '1', 'token', token, 'updated_at', NOW)
if tenant ~= '' then redis.call('HSET', wk, 'tenant', tenant) end
redis.call('HSETNX', wk, 'created_at', NOW)
if not st then
  st = 'provisioning'
  redis.call('HSET', wk, 'state', st)
end
if ep ~= '' and (redis.call('HGET', wk, 'endpoint') or '') == '' then
  redis.call('HSET', wk, 'endpoint', ep)
end
redis.call('ZADD', key_workspaces(), 'NX', NOW, wid)
if st == 'ready' then
  redis.call('ZREM', key_pool_starting(), wid)
  redis.call('ZADD', key_pool_available(), 'NX', NOW, wid)
else
  redis.call('ZADD', key_pool_starting(), 'NX', NOW, wid)
end
pool_changed()
return {'added', encode(wk)}
