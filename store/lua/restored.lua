-- MarkRestored. KEYS[1] ws. ARGV: prefix, now, checkpoint.
-- Records which saved checkpoint was restored into the workspace, so the
-- API names it in a status event when the workspace becomes ready.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'stopped' then return 0 end
redis.call('HSET', KEYS[1], 'restored', ARGV[3], 'updated_at', NOW)
return 1
