-- StreamStarted / RenewStream. KEYS[1] ws, KEYS[2] streams.
-- ARGV: prefix, now, wid, stream_id, lease_ms.
local wid, sid, lease = ARGV[3], ARGV[4], tonumber(ARGV[5])
if not live(wid) then return 0 end
redis.call('ZADD', KEYS[2], tonumber(NOW) + lease, sid)
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
return 1
