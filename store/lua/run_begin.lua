-- BeginRun: ClaimConversation, CreateRun and AcquireLease of the run's
-- relay lease in one round trip; on a conversation ready on its workspace
-- also StartRun (base 1) and the run's first event logged.
-- It also reports whether the workspace's proxy holds the conversation's
-- MCP rules (SyncRules would change nothing).
-- KEYS[1] conv, KEYS[2] run, KEYS[3] conv_runs, KEYS[4] lease, KEYS[5] run_log,
-- KEYS[6] mcp.
-- ARGV: prefix, now, owner, tenant, rid, keep, holder, lease_ms, max_events,
-- first event ("<type>\n<data>"), then the run's field/value pairs.
local ck, rk = KEYS[1], KEYS[2]
local claimed = claim_conv(ck, ARGV[3], ARGV[4])
if claimed == 'not_owner' then return {'not_owner', ''} end
local fields = {}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
if not create_run(rk, KEYS[3], ARGV[5], tonumber(ARGV[6]), fields) then
  return {'conflict', encode(ck)}
end
take_lease(KEYS[4], ARGV[7], tonumber(ARGV[8]))
local c = redis.call('HMGET', ck, 'state', 'workspace', 'endpoint')
if c[1] ~= 'ready' or not c[3] or c[3] == '' then return {'cold', encode(ck)} end
redis.call('HSET', rk, 'state', 'running', 'workspace', c[2] or '', 'endpoint', c[3], 'base', 1)
log_events(KEYS[5], tonumber(ARGV[9]), 1, {ARGV[10]})
local held = redis.call('HMGET', key_ws(c[2] or ''), 'state', 'mcp_digest')
local want = redis.call('HGET', KEYS[6], 'digest') or ''
local synced = '0'
if held[1] and held[1] ~= 'stopped' and (held[2] or '') == want then synced = '1' end
return {'hot', encode(ck), synced}
