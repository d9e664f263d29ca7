-- Touch. KEYS[1] ws. ARGV: prefix, now, wid.
if not live(ARGV[3]) then return 0 end
redis.call('ZADD', P .. 'lastuse', 'GT', NOW, ARGV[3])
return 1
