-- MarkRulesApplied. KEYS[1] ws. ARGV: prefix, now, digest.
-- Records which rule set the workspace's proxy holds (a digest, not the
-- rules), so the API re-applies only when the conversation's rules differ.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'stopped' then return 0 end
redis.call('HSET', KEYS[1], 'mcp_digest', ARGV[3], 'updated_at', NOW)
return 1
