-- AbandonClaim. KEYS[1] conv, KEYS[2] ws. ARGV: prefix, now, cid, wid, reason.
-- Undoes a claim whose workspace failed its health check or its
-- personalisation: the conversation goes back to queued (same generation:
-- its cold-start token was never used) and the workspace is marked
-- releasing so the caller can stop it. Compare-and-clear on the binding.
local ck, wk, cid, wid, reason = KEYS[1], KEYS[2], ARGV[3], ARGV[4], ARGV[5]
if (redis.call('HGET', ck, 'workspace') or '') ~= wid then return {'conflict', encode(ck)} end
redis.call('HSET', ck, 'state', 'queued', 'workspace', '', 'endpoint', '', 'error', '',
  'previous_workspace', wid)
redis.call('ZREM', key_lastuse(), wid)
if redis.call('EXISTS', wk) == 1 then
  redis.call('HSET', wk, 'releasing', reason, 'updated_at', NOW)
end
changed(cid, ck)
return {'ok', encode(ck)}
