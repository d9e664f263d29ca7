-- RefreshEndpoint (reconciler). KEYS[1] ws. ARGV: prefix, now, wid, endpoint.
-- The runtime reports a different agent endpoint than Redis holds: update
-- the workspace and, if its conversation is ready on it, the conversation.
local wk, wid, ep = KEYS[1], ARGV[3], ARGV[4]
local st = redis.call('HGET', wk, 'state')
if not st or st == 'stopped' or ep == '' then return 0 end
if (redis.call('HGET', wk, 'endpoint') or '') == ep then return 0 end
redis.call('HSET', wk, 'endpoint', ep, 'updated_at', NOW)
local cid = redis.call('HGET', wk, 'conversation') or ''
if cid ~= '' then
  local ck = key_conv(cid)
  if (redis.call('HGET', ck, 'workspace') or '') == wid and redis.call('HGET', ck, 'state') == 'ready' then
    redis.call('HSET', ck, 'endpoint', ep)
    changed(cid, ck)
  end
end
return 1
