-- ClaimPoolWorkspace. KEYS[1] conv. ARGV: prefix, now, cid, generation, requested_at.
-- Hands the oldest available pool workspace to the conversation, in one
-- step: pop it from the inventory, bind it (conversation provisioning until
-- it is personalised: ActivateClaim), record the claim. An entry whose
-- workspace is no longer ready and unclaimed (should not happen: every
-- change keeps the sets in step) is dropped and the next one tried. A
-- workspace leaves pool:available only here, so no two conversations ever
-- get the same one.
local ck, cid, gen, rat = KEYS[1], ARGV[3], ARGV[4], ARGV[5]
local curgen = redis.call('HGET', ck, 'generation') or '0'
if tonumber(curgen) ~= tonumber(gen) then return {'generation', '', '', encode(ck)} end
local bound = redis.call('HGET', ck, 'workspace') or ''
if bound ~= '' and live(bound) then return {'conflict', '', '', encode(ck)} end

local ak = key_pool_available()
while true do
  local e = redis.call('ZPOPMIN', ak, 1)
  if #e == 0 then
    return {'empty', '', '', encode(ck)}
  end
  local wid = e[1]
  local wk = key_ws(wid)
  local st = redis.call('HGET', wk, 'state')
  local owner = redis.call('HGET', wk, 'conversation') or ''
  if st == 'ready' and owner == '' then
    local tenant = redis.call('HGET', ck, 'tenant') or ''
    redis.call('HSET', wk, 'conversation', cid, 'tenant', tenant, 'generation', gen,
      'claimed_at', NOW, 'updated_at', NOW)
    redis.call('ZADD', key_pool_claimed(), NOW, wid)
    if bound ~= '' then redis.call('HSET', ck, 'previous_workspace', bound) end
    redis.call('HSET', ck, 'state', 'provisioning', 'workspace', wid, 'endpoint', '', 'error', '')
    if rat ~= '' then redis.call('HSET', ck, 'requested_at', rat) end
    redis.call('HSETNX', ck, 'created_at', NOW)
    changed(cid, ck)
    pool_changed()
    return {'claimed', wid, encode(wk), encode(ck)}
  end
end
