-- UsedSince. KEYS[1] lastuse. ARGV: prefix, now, after_ms, limit.
-- Read-only: workspaces whose last use is after after_ms (oldest first),
-- each with its conversation and whether it has an unexpired stream lease.
local after, limit = ARGV[3], tonumber(ARGV[4])
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #cands, 2 do
  local wid, used = cands[i], cands[i + 1]
  out[#out + 1] = wid
  out[#out + 1] = used
  out[#out + 1] = redis.call('HGET', key_ws(wid), 'conversation') or ''
  out[#out + 1] = tostring(redis.call('ZCOUNT', key_streams(wid), '(' .. NOW, '+inf'))
end
return out
