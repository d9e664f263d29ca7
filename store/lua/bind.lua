-- BindProvisioning. KEYS[1] conv, KEYS[2] ws.
-- ARGV: prefix, now, cid, wid, generation, token, tenant, endpoint, requested_at.
local ck, wk = KEYS[1], KEYS[2]
local cid, wid, gen, token, tenant, ep, rat =
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local curgen = redis.call('HGET', ck, 'generation') or '0'
if tonumber(curgen) ~= tonumber(gen) then return {'generation', encode(ck), encode(wk)} end

local bound = redis.call('HGET', ck, 'workspace') or ''
if bound == wid then return {'bound', encode(ck), encode(wk)} end
if bound ~= '' and live(bound) then return {'conflict', encode(ck), encode(wk)} end

redis.call('HSET', wk, 'conversation', cid, 'token', token, 'tenant', tenant,
  'generation', gen, 'pool', '0', 'updated_at', NOW)
redis.call('HSETNX', wk, 'created_at', NOW)
local st = redis.call('HGET', wk, 'state')
if st == 'stopped' then
  -- The workspace died before we bound it (its STOPPED event came first).
  local reason = redis.call('HGET', wk, 'stopped_reason') or ''
  settle(cid, ck, wid, 'lost', 'workspace stopped before it was bound: ' .. reason)
  return {'stopped', encode(ck), encode(wk)}
end
if not st then
  st = 'provisioning'
  redis.call('HSET', wk, 'state', st)
end
if ep ~= '' and (redis.call('HGET', wk, 'endpoint') or '') == '' then
  redis.call('HSET', wk, 'endpoint', ep)
end
redis.call('ZADD', key_workspaces(), 'NX', NOW, wid)

local cst, cep = 'provisioning', ''
if st == 'ready' then
  -- The workspace became ready before the bind (events overtook us).
  cst, cep = 'ready', redis.call('HGET', wk, 'endpoint') or ''
  redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
end
redis.call('HSET', ck, 'state', cst, 'workspace', wid, 'endpoint', cep, 'error', '')
if rat ~= '' then redis.call('HSET', ck, 'requested_at', rat) end
redis.call('HSETNX', ck, 'created_at', NOW)
changed(cid, ck)
return {'bound', encode(ck), encode(wk)}
