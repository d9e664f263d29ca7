-- Unbind / FailWorkspace / MarkFailed. KEYS[1] conv.
-- ARGV: prefix, now, cid, wid ('' = whatever is bound, only if not live), state, reason.
local ck, cid, wid, st, reason = KEYS[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local bound = redis.call('HGET', ck, 'workspace') or ''
if wid ~= '' then
  if bound ~= wid then return {'conflict', encode(ck)} end
  settle(cid, ck, wid, st, reason)
  return {'ok', encode(ck)}
end
if bound ~= '' and live(bound) then return {'conflict', encode(ck)} end
if (redis.call('HGET', ck, 'state') or 'none') == st then return {'unchanged', encode(ck)} end
settle(cid, ck, bound, st, reason)
return {'ok', encode(ck)}
