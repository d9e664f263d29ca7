-- MarkReady. KEYS[1] ws. ARGV: prefix, now, wid, endpoint.
local wk, wid, ep = KEYS[1], ARGV[3], ARGV[4]
local st = redis.call('HGET', wk, 'state')
if not st then return {'not_found', '', ''} end
if st == 'stopped' then return {'stopped', encode(wk), ''} end
if st == 'ready' then return {'unchanged', encode(wk), ''} end
redis.call('HSET', wk, 'state', 'ready', 'ready_at', NOW, 'updated_at', NOW)
if ep ~= '' then redis.call('HSET', wk, 'endpoint', ep) end
ep = redis.call('HGET', wk, 'endpoint') or ''

local cj = ''
local cid = redis.call('HGET', wk, 'conversation') or ''
if cid ~= '' then
  local ck = key_conv(cid)
  if (redis.call('HGET', ck, 'workspace') or '') == wid then
    redis.call('HSET', ck, 'state', 'ready', 'endpoint', ep, 'error', '')
    redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
    changed(cid, ck)
    cj = encode(ck)
  end
elseif redis.call('HGET', wk, 'pool') == '1' then
  redis.call('ZREM', key_pool_starting(), wid)
  redis.call('ZADD', key_pool_available(), NOW, wid)
  pool_changed()
end
return {'ready', encode(wk), cj}
