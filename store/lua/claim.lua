-- ClaimConversation. KEYS[1] conv. ARGV: prefix, now, cid, owner, tenant.
local ck, owner, tenant = KEYS[1], ARGV[4], ARGV[5]
local cur = redis.call('HGET', ck, 'owner')
if cur and cur ~= '' then
  if cur ~= owner then return {'not_owner', ''} end
  return {'ok', encode(ck)}
end
redis.call('HSET', ck, 'owner', owner, 'tenant', tenant, 'updated_at', NOW)
redis.call('HSETNX', ck, 'created_at', NOW)
redis.call('HSETNX', ck, 'state', 'none')
redis.call('HSETNX', ck, 'generation', 0)
redis.call('HSETNX', ck, 'rev', 0)
return {'created', encode(ck)}
