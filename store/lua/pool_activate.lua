-- ActivateClaim. KEYS[1] conv, KEYS[2] ws. ARGV: prefix, now, cid, wid.
-- The claimed, personalised workspace serves: the conversation becomes
-- ready with its endpoint and waiters are notified.
local ck, wk, cid, wid = KEYS[1], KEYS[2], ARGV[3], ARGV[4]
if (redis.call('HGET', ck, 'workspace') or '') ~= wid then return {'conflict', encode(ck)} end
local st = redis.call('HGET', wk, 'state')
if st == 'stopped' or not st then return {'stopped', encode(ck)} end
if st ~= 'ready' then return {'not_ready', encode(ck)} end
if redis.call('HGET', ck, 'state') == 'ready' then return {'unchanged', encode(ck)} end
local ep = redis.call('HGET', wk, 'endpoint') or ''
redis.call('HSET', ck, 'state', 'ready', 'endpoint', ep, 'error', '')
redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
changed(cid, ck)
return {'ready', encode(ck)}
