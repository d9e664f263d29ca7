-- MarkQueued. KEYS[1] conv. ARGV: prefix, now, cid, request_id, requested_at.
local ck, cid, rid, rat = KEYS[1], ARGV[3], ARGV[4], ARGV[5]
local st = redis.call('HGET', ck, 'state') or 'none'
local wid = redis.call('HGET', ck, 'workspace') or ''
if wid ~= '' then
  if live(wid) then return {'live', encode(ck)} end
  -- Bound to a workspace Redis no longer knows: that binding is dead.
  redis.call('HSET', ck, 'previous_workspace', wid)
  redis.call('HINCRBY', ck, 'generation', 1)
end
if st == 'queued' then return {'unchanged', encode(ck)} end
redis.call('HSET', ck, 'state', 'queued', 'workspace', '', 'endpoint', '', 'error', '',
  'request_id', rid, 'requested_at', rat)
redis.call('HSETNX', ck, 'created_at', NOW)
changed(cid, ck)
return {'queued', encode(ck)}
