-- AdoptWorkspace (reconciler). KEYS[1] conv, KEYS[2] ws.
-- ARGV: prefix, now, cid, wid, token, tenant, owner, generation, endpoint, ready, pool.
-- Restores what Redis lost about a running workspace from what the runtime
-- durably knows (labels, tags, the claim record): the workspace record and
-- the conversation's binding, owner and generation. It never takes a
-- conversation from another live workspace, nor binds a workspace of an
-- older generation than the conversation's (that one is an orphan).
local ck, wk = KEYS[1], KEYS[2]
local cid, wid, token, tenant, owner, gen, ep, ready, pool =
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]

local st = redis.call('HGET', wk, 'state')
if st == 'stopped' then return {'stopped', encode(ck)} end

local created = false
if redis.call('EXISTS', ck) == 0 then
  redis.call('HSET', ck, 'owner', owner, 'tenant', tenant, 'state', 'none', 'generation', gen,
    'rev', 0, 'created_at', NOW, 'updated_at', NOW)
  created = true
else
  if (redis.call('HGET', ck, 'owner') or '') == '' and owner ~= '' then redis.call('HSET', ck, 'owner', owner) end
  if (redis.call('HGET', ck, 'tenant') or '') == '' and tenant ~= '' then redis.call('HSET', ck, 'tenant', tenant) end
end
local bound = redis.call('HGET', ck, 'workspace') or ''
local curgen = tonumber(redis.call('HGET', ck, 'generation') or '0')
if bound ~= wid then
  if bound ~= '' and live(bound) then return {'conflict', encode(ck)} end
  if curgen > tonumber(gen) then return {'superseded', encode(ck)} end
end

-- The workspace record.
if not st then
  st = 'running'
  redis.call('HSET', wk, 'state', st, 'running_at', NOW, 'created_at', NOW)
end
if ready == '1' and (st == 'provisioning' or st == 'running') then
  st = 'ready'
  redis.call('HSET', wk, 'state', st, 'ready_at', NOW)
end
redis.call('HSET', wk, 'conversation', cid, 'token', token, 'generation', gen, 'pool', pool, 'updated_at', NOW)
if tenant ~= '' then redis.call('HSET', wk, 'tenant', tenant) end
if ep ~= '' then redis.call('HSET', wk, 'endpoint', ep) end
redis.call('ZADD', key_workspaces(), 'NX', NOW, wid)
if pool == '1' then
  redis.call('HSETNX', wk, 'claimed_at', NOW)
  redis.call('ZREM', key_pool_available(), wid)
  redis.call('ZREM', key_pool_starting(), wid)
  redis.call('ZADD', key_pool_claimed(), 'NX', NOW, wid)
end

-- The binding.
local cst = redis.call('HGET', ck, 'state') or 'none'
local want = 'provisioning'
if st == 'ready' then want = 'ready' end
if bound == wid and cst == want and not created then return {'unchanged', encode(ck)} end
if bound ~= wid and bound ~= '' then redis.call('HSET', ck, 'previous_workspace', bound) end
local cep = ''
if want == 'ready' then
  cep = redis.call('HGET', wk, 'endpoint') or ''
  redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
end
redis.call('HSET', ck, 'state', want, 'workspace', wid, 'endpoint', cep, 'error', '', 'generation', gen)
changed(cid, ck)
return {'adopted', encode(ck)}
