-- MarkReleasing. KEYS[1] ws. ARGV: prefix, now, reason.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'releasing', ARGV[3], 'updated_at', NOW)
return 1
