-- StreamEnded. KEYS[1] ws, KEYS[2] streams. ARGV: prefix, now, wid, stream_id.
local wid, sid = ARGV[3], ARGV[4]
redis.call('ZREM', KEYS[2], sid)
if live(wid) then redis.call('ZADD', key_lastuse(), 'GT', NOW, wid) end
return 1
