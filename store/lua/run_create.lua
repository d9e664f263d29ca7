-- CreateRun. KEYS[1] run, KEYS[2] conv_runs.
-- ARGV: prefix, now, rid, keep (runs listed per conversation), then field/value pairs.
local rid, keep = ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'created_at', NOW, 'updated_at', NOW, unpack(fields))
redis.call('ZADD', KEYS[2], NOW, rid)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep + 1))
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', key_runs_active(), NOW, rid)
return 1
