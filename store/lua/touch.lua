-- Touch. KEYS[1] ws, KEYS[2] lastuse. ARGV: prefix, now, wid.
if not live(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], 'GT', NOW, ARGV[3])
return 1
