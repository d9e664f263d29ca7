-- SetMCPRules. KEYS[1] mcp. ARGV: prefix, now, rules_json, digest.
-- The conversation's MCP header rules (secrets: header values) live in a
-- key of their own, never in conv:{cid}, whose snapshots are published.
-- Empty digest = no rules: the key is deleted.
local mk, rules, digest = KEYS[1], ARGV[3], ARGV[4]
local cur = redis.call('HGET', mk, 'digest') or ''
if cur == digest then return 0 end
if digest == '' then
  redis.call('DEL', mk)
else
  redis.call('HSET', mk, 'rules', rules, 'digest', digest, 'updated_at', NOW)
end
return 1
