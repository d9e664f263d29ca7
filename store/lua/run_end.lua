-- EndRun. KEYS[1] run, KEYS[2] run_log, KEYS[3] conv_runs.
-- ARGV: prefix, now, rid, ttl_ms, then field/value pairs.
local rid, ttl = ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'ended_at', NOW, 'updated_at', NOW, unpack(fields))
redis.call('ZREM', key_runs_active(), rid)
-- The end of a run is a use of its workspace (as a stream's end is): the
-- idle clock restarts and the checkpointer sees that a run ended.
local wid = redis.call('HGET', KEYS[1], 'workspace')
if wid and wid ~= '' and live(wid) then
  redis.call('ZADD', key_lastuse(), 'GT', NOW, wid)
end
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
-- The conversation's list lives while one of its runs is active, and as
-- long as the record of its last ended run.
for _, other in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('ZSCORE', key_runs_active(), other) then return 1 end
end
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
