-- IdleWorkspaces. KEYS[1] lastuse. ARGV: prefix, now, cutoff_ms, limit, scan_max.
-- A workspace is idle when its last use is at or before the cutoff and it
-- has no unexpired stream lease. Expired leases (a crashed stream) are
-- pruned here.
local cutoff, limit, scanmax = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, scanmax)
local out = {}
for i = 1, #cands, 2 do
  if #out >= limit * 3 then break end
  local wid, used = cands[i], cands[i + 1]
  local sk = key_streams(wid)
  redis.call('ZREMRANGEBYSCORE', sk, '-inf', NOW)
  if redis.call('ZCARD', sk) == 0 then
    out[#out + 1] = wid
    out[#out + 1] = used
    out[#out + 1] = redis.call('HGET', key_ws(wid), 'conversation') or ''
  end
end
return out
