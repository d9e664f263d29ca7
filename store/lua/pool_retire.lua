-- RetirePoolWorkspace. KEYS[1] ws. ARGV: prefix, now, wid, reason.
-- Takes an available workspace out of the inventory so it can be stopped
-- (recycled for age, or surplus). Only an available one: once claimed it
-- belongs to its conversation. Reports 1 if it was taken out.
local wk, wid, reason = KEYS[1], ARGV[3], ARGV[4]
if redis.call('ZREM', key_pool_available(), wid) == 0 then return 0 end
if redis.call('EXISTS', wk) == 1 then
  redis.call('HSET', wk, 'releasing', reason, 'updated_at', NOW)
end
pool_changed()
return 1
